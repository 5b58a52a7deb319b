"""The device health check: golden outputs judged by check.judge under the release's gates, NaN/Inf
always failing, the latency budget held to the median of the timed runs, one JSON line out."""

from __future__ import annotations

import json

import pytest
from onnx import TensorProto, helper

from edgeship.core.errors import BadInput
from edgeship.core.golden import load_golden, save_golden
from edgeship.ship.healthcheck import HealthResult, check_model, main

KEYS = {"healthy", "why", "metrics", "latency_ms", "load_time_s", "first_pass_s", "samples"}


def _nan_model(path):
    """float32 [N,16] → [N,4] like the tiny model, but every output is NaN (sqrt of a negative)."""
    import onnx

    graph = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["n"]),
         helper.make_node("Sub", ["n", "one"], ["m"]), helper.make_node("Sqrt", ["m"], ["s"]),
         helper.make_node("Slice", ["s", "starts", "ends", "axes"], ["logits"])],
        "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
         helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
         helper.make_tensor("ends", TensorProto.INT64, [1], [4]),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_healthy_model_and_the_result_keys(releases):
    r = check_model(releases["v1"].model, releases["v1"].golden, ["cosine_min>=0.999"], 200.0)
    assert r.healthy, r.why
    assert set(r.to_dict()) == KEYS and "cosine_min" in r.why
    assert r.metrics["cosine_min"] == pytest.approx(1.0) and r.metrics["nonfinite"] == 0
    assert r.samples == 4 and r.first_pass_s > 0 and r.load_time_s > 0
    assert 0 < r.latency_ms["median"] <= r.latency_ms["max"]


def test_outputs_that_differ_from_the_golden_fail_their_gate(releases):
    r = check_model(releases["bad"].model, releases["bad"].golden, ["cosine_min>=0.999"], None)
    assert not r.healthy and "cosine_min" in r.why and r.metrics["cosine_min"] < 0.999


def test_nan_fails_even_without_gates(tmp_path, releases):
    model = _nan_model(tmp_path / "nan.onnx")
    r = check_model(model, releases["v1"].golden, [], None)
    assert not r.healthy and "NaN/Inf" in r.why and r.metrics["nonfinite"] == 16
    assert check_model(releases["v1"].model, releases["v1"].golden, [], None).why == "no gates"


def test_latency_budget_holds_the_median(releases):
    r = check_model(releases["v1"].model, releases["v1"].golden, [], 1e-6)
    assert not r.healthy and "(median) exceeds the budget" in r.why
    untimed = check_model(releases["v1"].model, releases["v1"].golden, [], 1e-6, timed_runs=0)
    assert untimed.healthy and untimed.latency_ms == {"max": None, "median": None}


def test_golden_outputs_the_model_lacks(tmp_path, releases):
    inputs, refs, _, _ = load_golden(releases["v1"].golden)
    other = save_golden(tmp_path / "other.npz", inputs, [{"scores": r["logits"]} for r in refs])
    r = check_model(releases["v1"].model, other, [], None)
    assert r == HealthResult(False, "the model has no output 'scores' that the golden file has")
    wrong_shape = save_golden(tmp_path / "shape.npz", inputs, [{"logits": r["logits"][:, :2]} for r in refs])
    r = check_model(releases["v1"].model, wrong_shape, [], None)
    assert not r.healthy and "shape" in r.why


def test_a_malformed_gate_is_bad_input(releases):
    with pytest.raises(BadInput):
        check_model(releases["v1"].model, releases["v1"].golden, ["cosine_min>>1"], None)


def test_main_prints_one_json_line_and_exits_by_verdict(releases, tmp_path, capsys):
    assert main(["--model", str(releases["v1"].model), "--golden", str(releases["v1"].golden),
                 "--gate", "cosine_min>=0.999", "--timed-runs", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and set(json.loads(out[0])) == KEYS
    assert main(["--model", str(releases["bad"].model), "--golden", str(releases["bad"].golden),
                 "--gate", "cosine_min>=0.999"]) == 1
    assert json.loads(capsys.readouterr().out)["healthy"] is False
    assert main(["--model", str(tmp_path / "none.onnx"), "--golden", str(releases["v1"].golden)]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["healthy"] is False and err["error"]
    assert main([]) == 2
    assert json.loads(capsys.readouterr().out) == {"healthy": False, "why": "give --model and --golden, or --slot-dir"}
