import json

import numpy as np
import pytest

from edgeship.cli.main import main
from edgeship.core.errors import BadInput
from edgeship.pipeline.optimize import optimize
from edgeship.pipeline.recipe import OptimizeRecipe
from models.tiny import tiny_onnx, torch_factory_file


@pytest.fixture()
def onnx_source(tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "eval.npz", x=np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32))
    return model, tmp_path / "eval.npz"


def test_onnx_source_report_shape_and_resume(tmp_path, onnx_source):
    model, data = onnx_source
    recipe = OptimizeRecipe(model=str(model), data=str(data), out=str(tmp_path / "run"), bench_min_time_s=0.2,
                            variants=("fp32",))
    report = optimize(recipe)
    run = tmp_path / "run"
    on_disk = json.loads((run / "report.json").read_text())
    assert on_disk["model"] == str(model)
    (row,) = on_disk["variants"]
    assert row["id"] == "fp32@onnxruntime" and row["target"] == "onnxruntime-cpu" and row["precision"] == "fp32"
    assert (run / row["path"]).is_file() and row["size_bytes"] == (run / row["path"]).stat().st_size
    assert set(row["metrics"]) >= {"cosine_mean", "cosine_min", "max_abs"}
    assert set(row["latency_ms"]) >= {"p50", "p90", "p99"}
    assert row["gate"]["passed"] is True and row["chosen"] is True
    for f in ("report.md", "report.html", "golden.npz", "recipe.yaml"):
        assert (run / f).is_file()
    assert report["steps"]["reused"] == []
    again = optimize(recipe)
    assert set(again["steps"]["reused"]) >= {"export", "golden", "check-fp32-onnxruntime", "bench-fp32-onnxruntime"}
    assert again["steps"]["ran"] == []
    # a changed input file reruns what depends on it
    tiny_onnx(model, seed=5)
    third = optimize(recipe)
    assert "export" in third["steps"]["ran"] and "golden" in third["steps"]["ran"]


def test_torch_factory_source_with_pytorch_baseline(tmp_path):
    spec = torch_factory_file(tmp_path)
    np.savez(tmp_path / "eval.npz", x=np.random.default_rng(0).standard_normal((10, 1, 8, 8)).astype(np.float32))
    rc = main(["optimize", "--model", spec, "--data", str(tmp_path / "eval.npz"), "--out", str(tmp_path / "run"),
               "--variants", "fp32", "--json"])
    assert rc == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["baseline"]["target"] == "pytorch-cpu" and report["baseline"]["latency_ms"]["p50"] > 0
    row = report["variants"][0]
    assert row["gate"]["passed"], row["gate"]["why"]  # ORT reproduces PyTorch to the FP32 tolerance
    assert row["metrics"]["rel_err_max"] < 1e-5 and row["speedup_vs_pytorch"] > 0


def test_recipe_file_and_bad_recipes(tmp_path, onnx_source):
    model, data = onnx_source
    (tmp_path / "r.yaml").write_text(f"model: {model}\ndata: {data}\nout: {tmp_path / 'run'}\nbench_min_time_s: 0.1\n"
                                     "variants: [fp32]\n")
    assert main(["optimize", str(tmp_path / "r.yaml")]) == 0
    with pytest.raises(BadInput, match="batch"):
        OptimizeRecipe(model="x.onnx", batch=0)
    (tmp_path / "bad.yaml").write_text("model: x.onnx\nvariant: [fp32]\n")
    assert main(["optimize", str(tmp_path / "bad.yaml")]) == 2
    assert main(["optimize", "--model", str(model), "--data", str(data), "--variants", "nope",
                 "--out", str(tmp_path / "r2")]) == 2


def test_default_variants_are_built_checked_and_one_is_chosen(tmp_path, onnx_source, monkeypatch):
    from edgeship.core import cpu

    # fp16 is built whatever this machine's CPU (without fp16 arithmetic it would be skipped: test_variant_rules)
    monkeypatch.setattr(cpu, "fp16_arithmetic", lambda: (True, "assumed by the test"))
    model, data = onnx_source
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((64, 16)).astype(np.float32))
    report = optimize(OptimizeRecipe(model=str(model), data=str(data), calib=str(tmp_path / "calib.npz"),
                                     out=str(tmp_path / "run"), bench_min_time_s=0.1, gates=("cosine_min>=0.99",)))
    rows = {r["variant"]: r for r in report["variants"]}
    assert set(rows) == {"fp32", "fp16", "int8-dynamic", "int8-static", "int4-weight", "mixed"}
    for name, row in rows.items():
        assert row["status"] in ("pass", "fail"), (name, row["gate"]["why"])
        assert (tmp_path / "run" / row["path"]).is_file()
        assert row["latency_ms"]["p50"] > 0 and row["metrics"]["cosine_min"] <= 1.0 + 1e-9
    assert rows["fp16"]["size_bytes"] < rows["fp32"]["size_bytes"]
    chosen = [r for r in report["variants"] if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["gate"]["passed"]
    fastest = min((r for r in report["variants"] if r["gate"]["passed"]), key=lambda r: r["latency_ms"]["p50"])
    assert chosen[0]["id"] == fastest["id"]


@pytest.mark.slow
def test_targets_matrix_runs_each_variant_on_its_own_runtime(tmp_path):
    """digits on ONNX Runtime, OpenVINO and TFLite: FP32 on every target, INT8 by each target's own tools."""
    report = optimize(OptimizeRecipe(model="zoo:digits-cnn", out=str(tmp_path / "run"), limit=120,
                                     variants=("fp32", "int8-static", "mixed"),
                                     targets=("onnxruntime", "openvino", "tflite", "tflite-micro"),
                                     bench_min_time_s=0.1))
    rows = {r["id"]: r for r in report["variants"]}
    assert set(rows) == {"fp32@onnxruntime", "fp32@openvino", "fp32@tflite", "int8-static@onnxruntime",
                         "int8-static@openvino", "int8-static@tflite", "int8-static@tflite-micro",
                         "mixed@onnxruntime", "mixed@openvino"}
    micro = rows["int8-static@tflite-micro"]
    assert 1000 < micro["arena_bytes"] < 1_000_000  # the digits CNN fits a microcontroller's RAM
    assert "arena B" in (tmp_path / "run" / "report.md").read_text()
    assert rows["int8-static@tflite"]["precision"] == "int8" and rows["int8-static@tflite"]["path"].endswith(".tflite")
    assert rows["fp32@openvino"]["path"].endswith(".xml")
    for row in rows.values():
        assert row["status"] == "pass", (row["id"], row["gate"]["why"])
        assert row["metrics"]["accuracy_drop"] <= 1.0 and row["latency_ms"]["p50"] > 0
    # OpenVINO runs the mixed file as built (its QDQ pairs in INT8), the other targets have no such precision
    assert rows["mixed@openvino"]["precision"] == "as-built"
    assert "INT8" in rows["mixed@openvino"]["target_facts"]["quantization"]
    assert any(s.startswith("mixed@tflite") for s in report["skipped"])
    assert {r["target"] for r in report["variants"] if r["chosen"]} == {"onnxruntime-cpu", "openvino-cpu",
                                                                        "tflite-cpu", "tflite-micro"}


def test_int8_weight_variant_on_onnx_runtime_and_openvino(tmp_path, onnx_source):
    """Weight-only INT8: MatMulNBits (8 bits) on ONNX Runtime, NNCF's weight compression on OpenVINO
    (converted from the FP32 file, not from the ONNX Runtime build); both judged like any variant (the
    size gain is in tests/targets/test_minilm.py: a model this small only gains the scales' nodes)."""
    pytest.importorskip("nncf")
    model, data = onnx_source
    report = optimize(OptimizeRecipe(model=str(model), data=str(data), out=str(tmp_path / "run"),
                                     bench_min_time_s=0.05, variants=("fp32", "int8-weight"),
                                     targets=("onnxruntime", "openvino"), gates=("cosine_min>=0.99",)))
    rows = {r["id"]: r for r in report["variants"]}
    assert set(rows) == {"fp32@onnxruntime", "fp32@openvino", "int8-weight@onnxruntime", "int8-weight@openvino"}
    ov = rows["int8-weight@openvino"]
    assert ov["precision"] == "int8-weight" and ov["target_facts"]["nncf"]["compress_weights"] == "INT8_ASYM"
    import openvino

    ir = openvino.Core().read_model(str(tmp_path / "run" / ov["path"]))
    weights = [op.get_element_type() for op in ir.get_ops() if op.get_type_name() == "Constant"
               and op.get_output_partial_shape(0).rank.get_length() == 2]
    assert openvino.Type.u8 in weights, weights  # 8-bit weights in the IR
    for row in rows.values():
        assert row["status"] == "pass", (row["id"], row["gate"]["why"])
        assert row["metrics"]["cosine_min"] >= 0.99


def test_a_build_that_trains_needs_only_the_pytorch_source(tmp_path):
    """Builds that train start beside the export (where jobs run in parallel): they read the PyTorch
    source and the calibration data, never fp32.onnx, and their step is keyed by the source."""
    from edgeship.pipeline.executors import LocalExecutor, SequentialExecutor
    from edgeship.pipeline.optimize import Sweep, _build_job, _trains_early

    run = tmp_path / "run"
    run.mkdir()
    r = OptimizeRecipe(model="zoo:digits-cnn", out=str(run), variants=("fp32", "int8-static", "prune-30"),
                       variant_options={"prune-30": {"train": {"epochs": 1, "max_steps": 2}}})
    assert _trains_early(r, LocalExecutor(workers=2), True, "data:digits-calib") == ["prune-30"]
    assert _trains_early(r, SequentialExecutor(), True, "data:digits-calib") == []  # one process gains nothing
    assert _trains_early(r, LocalExecutor(workers=2), True, None) == []  # the plan skips it: no calibration data
    sweep = Sweep(r.to_dict(), str(run), "data:digits-test", "data:digits-calib", None, (), "classification", True)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = _build_job(sweep, "prune-30")
    finally:
        torch.set_num_threads(threads)
    assert not (run / "fp32.onnx").exists() and (run / res["built"]["path"]).is_file()
    assert res["ran"] == ["build-prune-30"]
    key = json.loads((run / "steps" / "build-prune-30.json").read_text())["key_detail"]
    assert key["model"] == "zoo:digits-cnn" and "fp32" not in key


def _with_an_onnx_runtime_only_op(path):
    """x @ W, then com.microsoft.Inverse: ONNX Runtime runs it, OpenVINO has no conversion for it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array((np.random.default_rng(1).standard_normal((4, 4)) + 4 * np.eye(4)).astype(np.float32),
                                "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Inverse", ["h"], ["y"], domain="com.microsoft")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), path)
    return path


def test_a_built_file_a_target_cannot_take_is_a_skipped_cell_with_its_reason(tmp_path):
    """The mixed file on OpenVINO goes as built; one with an op OpenVINO has no conversion for is listed
    as skipped with that reason (not an error row), while ONNX Runtime's row stands."""
    pytest.importorskip("openvino")
    model = _with_an_onnx_runtime_only_op(tmp_path / "inv.onnx")
    x = np.eye(4, dtype=np.float32) + 0.1 * np.random.default_rng(0).standard_normal((40, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", x=x[:20])
    np.savez(tmp_path / "calib.npz", x=x[20:])
    report = optimize(OptimizeRecipe(model=str(model), data=str(tmp_path / "eval.npz"),
                                     calib=str(tmp_path / "calib.npz"), out=str(tmp_path / "run"),
                                     variants=("mixed",), targets=("onnxruntime", "openvino"), bench_min_time_s=0.1,
                                     gates=("cosine_min>=0.9",)))
    assert [r["id"] for r in report["variants"]] == ["mixed@onnxruntime"]
    (why,) = [s for s in report["skipped"] if s.startswith("mixed@openvino")]
    assert "as-built: OpenVINO has no conversion" in why and "Inverse" in why
