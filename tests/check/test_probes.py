"""Stress probes: built from the IO spec and task, run by every check, gating lossy candidates."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.check.comparator import check
from edgeship.check.probes import SELECT_SEED, build_probes
from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset, load_data
from edgeship.core.golden import load_golden_probes
from edgeship.ship.healthcheck import check_model


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


BERT = _io(*((n, "int64", ("batch", "sequence")) for n in ("input_ids", "attention_mask", "token_type_ids")))
IMAGE = _io(("input", "float32", ("batch", 3, 224, 224)))


def test_text_probes_are_the_shortest_longest_and_repeated_inputs() -> None:
    from edgeship.zoo.minilm import tokenizer

    probes = build_probes(BERT, "embedding")
    assert probes.families == ["text"]
    by_kind = {k: [s for s, kk in zip(probes.samples, probes.kinds) if kk == k] for k in set(probes.kinds)}
    special = by_kind["special-only"][0]["input_ids"]
    assert special.tolist() == [[101, 102]]  # [CLS] [SEP]
    assert len(by_kind["single-token"]) >= 12 and all(s["input_ids"].shape == (1, 3) for s in by_kind["single-token"])
    assert len(by_kind["punctuation"]) >= 6
    longest = by_kind["longest"][0]["input_ids"]
    assert longest.shape[1] == tokenizer().model_max_length == 256  # sentence-transformers' limit
    repeated = [s["input_ids"][0, 1:-1] for s in by_kind["repeated"]]
    assert all(len(set(r.tolist())) <= 2 for r in repeated) and max(len(r) for r in repeated) > 100
    assert all(set(s) == set(BERT.input_names) and s["attention_mask"].all() for s in probes.samples)
    # the selection probes are another set of the same families: a search never sees the check's words
    other = build_probes(BERT, "embedding", seed=SELECT_SEED)
    words = {i for i, k in zip(probes.ids, probes.kinds) if k == "single-token"}
    assert other.kinds.count("single-token") >= 12
    assert not words & {i for i, k in zip(other.ids, other.kinds) if k == "single-token"}


def test_image_probes_cover_constant_dark_bright_noisy_and_colour_cast_inputs() -> None:
    probes = build_probes(IMAGE, "classification")
    assert probes.families == ["image"] and "[-1, 1]" in probes.notes[0]
    kinds = set(probes.kinds)
    assert {"constant", "very-dark", "very-bright", "noisy", "colour-cast", "low-contrast"} <= kinds
    x = {i: s["input"] for i, s in zip(probes.ids, probes.samples)}
    assert all(a.shape == (1, 3, 224, 224) and a.dtype == np.float32 for a in x.values())
    assert (x["image/black"] == -1).all() and (x["image/white"] == 1).all()
    assert x["image/scene at 4% light"].mean() < -0.9 and x["image/washed-out scene"].mean() > 0.9
    warm = x["image/warm cast"]
    assert warm[0, 0].mean() > warm[0, 2].mean() + 0.3  # red well above blue
    nhwc = build_probes(_io(("image", "float32", (1, 96, 128, 3))), "classification")
    assert nhwc.samples[0]["image"].shape == (1, 96, 128, 3)


def test_calibration_range_probes_sit_at_the_edges_the_calibration_saw() -> None:
    rng = np.random.default_rng(0)
    calib = Dataset("calib", [{"x": (rng.standard_normal((1, 16)) * 0.5 + 2).astype(np.float32)} for _ in range(32)])
    io = _io(("x", "float32", ("batch", 16)))
    probes = build_probes(io, calib=calib)
    assert probes.families == ["calibration-range"]
    stacked = np.concatenate([s["x"] for s in calib.samples])
    x = {i: s["x"] for i, s in zip(probes.ids, probes.samples)}
    np.testing.assert_array_equal(x["calibration-range/per-element minimum"][0], stacked.min(axis=0))
    np.testing.assert_array_equal(x["calibration-range/per-element maximum"][0], stacked.max(axis=0))
    for a in x.values():
        assert (a >= stacked.min(axis=0) - 1e-6).all() and (a <= stacked.max(axis=0) + 1e-6).all()
    # without calibration data, any model still gets the IO spec's probes
    bare = build_probes(io)
    assert bare.families == ["io-spec"] and {"zeros", "ones", "large"} == set(bare.kinds)
    assert all(s["x"].shape == (1, 16) for s in bare.samples)


def _clipping_pair(tmp_path):
    """A linear model and a copy that clips its input to [-2, 2]: identical on ordinary inputs,
    wrong on large ones — the error only a probe finds."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w")
    lo, hi = (numpy_helper.from_array(np.array(v, np.float32), n) for v, n in ((-2.0, "lo"), (2.0, "hi")))
    paths = []
    for name, nodes, inits in (
            ("ref", [helper.make_node("MatMul", ["x", "w"], ["y"])], [w]),
            ("clipped", [helper.make_node("Clip", ["x", "lo", "hi"], ["xc"]),
                         helper.make_node("MatMul", ["xc", "w"], ["y"])], [w, lo, hi])):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(model, str(paths[-1]))
    data = tmp_path / "data.npz"
    np.savez(data, x=(rng.standard_normal((24, 16)) * 0.4).astype(np.float32))
    return paths[0], paths[1], data


def test_a_candidate_passes_only_when_the_data_and_the_probes_pass(tmp_path) -> None:
    ref, clipped, data = _clipping_pair(tmp_path)
    gate = ["cosine_min>=0.999"]
    res = check(str(ref), [str(clipped)], data=str(data), gates=gate)
    cand = res.candidates[0]
    assert cand.summary["cosine_min"] > 0.99999  # the held-out data never reaches the clip
    assert cand.status == "fail" and cand.why.startswith("probes: cosine_min=")
    assert cand.probes["status"] == "fail" and cand.probes["gated"] and cand.probes["rows"] == 3
    assert cand.probes["worst_samples"]["cosine_min"] == "io-spec/normal values ×4"
    assert res.probes["probes"] == 3 and res.exit_code == 1
    reported = check(str(ref), [str(clipped)], data=str(data), gates=gate, probes_gated=False).candidates[0]
    assert reported.passed and reported.probes["status"] == "fail" and "probes (not gated)" in reported.why
    assert check(str(ref), [str(clipped)], data=str(data), gates=gate, probes=False).candidates[0].probes is None
    # the probes travel in the golden file: a later check and the device's health check judge them too
    golden = res.save_golden(tmp_path / "golden.npz")
    kept = load_golden_probes(golden)
    assert kept is not None and kept.ids == res.probe_golden.ids and len(kept.outputs) == 3
    again = check(str(golden), [str(clipped)], gates=gate).candidates[0]
    assert again.status == "fail" and again.probes["status"] == "fail"
    health = check_model(clipped, golden, gate, None, timed_runs=2)
    assert not health.healthy and health.probes["status"] == "fail" and "probes" in health.why
    assert check_model(clipped, golden, gate, None, timed_runs=2, probes=False).healthy
    assert check_model(ref, golden, gate, None, timed_runs=2).healthy


def test_image_model_probes_use_the_calibration_range() -> None:
    calib = load_data("data:images:calib", IMAGE, limit=8)
    probes = build_probes(IMAGE, "classification", calib=calib)
    assert probes.families == ["image", "calibration-range"] and not probes.notes
    lo = min(float(s["input"].min()) for s in calib.samples)
    black = probes.samples[probes.ids.index("image/black")]["input"]
    assert black.min() == pytest.approx(lo, abs=1e-6)
