"""Before any work: cells that cannot be built (no calibration data) or cannot pay, each with why."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.core import cpu
from edgeship.core.artifact import Model
from edgeship.pipeline.variant_rules import PlanFacts, implied_calibration, why_skipped
from models.tiny import tiny_onnx


def conv_net(path):
    """Two 3x3 convolutions (most of the weights) and a small classifier Gemm."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.1, n)
             for n, s in (("w1", (16, 3, 3, 3)), ("w2", (32, 16, 3, 3)), ("fc", (10, 32)))]
    graph = helper.make_graph([
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1)], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return Model.open(path)


@pytest.fixture()
def conv(tmp_path):
    return PlanFacts(conv_net(tmp_path / "conv.onnx"), "data:images:calib")


@pytest.fixture()
def mlp(tmp_path):
    return PlanFacts(Model.open(tiny_onnx(tmp_path / "mlp.onnx")), "calib.npz")


def test_int8_dynamic_is_skipped_on_convolutional_graphs_only(conv, mlp):
    why = why_skipped("int8-dynamic", "onnxruntime", ("variant", "int8"), conv)
    assert why.startswith("int8-dynamic would run this graph's convolutions (9") and "ConvInteger" in why
    assert why_skipped("int8-dynamic", "onnxruntime", ("variant", "int8"), mlp) == ""
    # TFLite's dynamic-range INT8 of the same graph is its own converter's: not this rule's business
    assert why_skipped("int8-dynamic", "tflite", ("fp32", "int8-dynamic"), conv) == ""


def test_int4_weight_needs_matmul_or_gather_weights(conv, mlp):
    why = why_skipped("int4-weight", "onnxruntime", ("variant", "int4"), conv)
    assert "this graph's weights feed Conv, Gemm, so nothing would change" in why
    assert why_skipped("int4-weight", "onnxruntime", ("variant", "int4"), mlp) == ""
    assert "MatMulNBits" in why_skipped("int8-weight", "onnxruntime", ("variant", "int8-weight"), conv)
    # OpenVINO's compress_weights packs Conv weights as well (EfficientNet-Lite0: 29% of the size)
    assert why_skipped("int8-weight", "openvino", ("fp32", "int8-weight"), conv) == ""


def test_fp16_is_skipped_where_the_cpu_has_no_fp16_arithmetic(monkeypatch, mlp):
    monkeypatch.setattr(cpu, "fp16_arithmetic", lambda: (False, "the CPU has no fp16 arithmetic (no AVX512-FP16)"))
    why = why_skipped("fp16", "onnxruntime", ("variant", "fp16"), mlp)
    assert why == ("fp16 cannot be faster than FP32 on this CPU on onnxruntime: the CPU has no fp16 arithmetic "
                   "(no AVX512-FP16), so every op widens fp16 to fp32")
    assert why_skipped("fp16", "tflite", ("fp32", "fp16"), mlp) == ""  # fp16 weights in a .tflite: its size
    monkeypatch.setattr(cpu, "fp16_arithmetic", lambda: (True, "the CPU has avx512_fp16"))
    assert why_skipped("fp16", "onnxruntime", ("variant", "fp16"), mlp) == ""
    monkeypatch.setattr(cpu, "fp16_arithmetic", lambda: (None, "cannot tell"))
    assert why_skipped("fp16", "openvino", ("fp32", "fp16"), mlp) == ""  # unknown: not skipped


def test_cells_that_calibrate_are_refused_without_calibration_data(tmp_path, monkeypatch):
    # fp16 on ONNX Runtime is skipped on CPUs without fp16 arithmetic whatever the data: not this rule
    monkeypatch.setattr(cpu, "fp16_arithmetic", lambda: (True, "the CPU has avx512_fp16"))
    facts = PlanFacts(Model.open(tiny_onnx(tmp_path / "m.onnx")), None)
    for vname, tname, how in (("int8-static", "onnxruntime", ("variant", "int8")),
                              ("mixed", "onnxruntime", ("variant", "mixed")),
                              ("prune-30", "onnxruntime", ("variant", "fp32"))):
        assert why_skipped(vname, tname, how, facts).startswith(f"{vname} builds from calibration data and the run "
                                                               "has none; add --calib DATA")
    assert why_skipped("int8-static", "tflite", ("fp32", "int8"), facts).startswith(
        "tflite INT8 calibrates on data and the run has none; add --calib DATA")
    for vname, how in (("fp32", ("variant", "fp32")), ("int8-dynamic", ("variant", "int8")),
                       ("fp16", ("variant", "fp16"))):
        assert why_skipped(vname, "onnxruntime", how, facts) == ""


def test_evaluation_data_implies_its_calibration_split():
    assert implied_calibration("data:images") == "data:images:calib"
    assert implied_calibration("data:images:test") == "data:images:calib"
    assert implied_calibration("data:digits-test") == "data:digits-calib"
    assert implied_calibration("data:images:calib") is None  # never calibrate on the evaluation data
    assert implied_calibration("data:synthetic") is None
    assert implied_calibration("eval.npz") is None and implied_calibration(None) is None


def test_cpu_flags_are_read_at_run_time():
    native, why = cpu.fp16_arithmetic()
    assert native in (True, False, None) and why
    if cpu.cpu_flags():
        assert native == any(f in cpu.cpu_flags() for f in (*cpu.FP16_FLAGS, "FEAT_FP16"))


def test_optimize_refuses_calibrating_variants_up_front_and_builds_nothing_for_them(tmp_path):
    from edgeship.pipeline.executors import ExecutorConfig
    from edgeship.pipeline.optimize import optimize
    from edgeship.pipeline.recipe import OptimizeRecipe

    model = tiny_onnx(tmp_path / "m.onnx")
    np.savez(tmp_path / "eval.npz", x=np.random.default_rng(0).standard_normal((6, 16)).astype(np.float32))
    report = optimize(OptimizeRecipe(model=str(model), data=str(tmp_path / "eval.npz"), out=str(tmp_path / "run"),
                                     variants=("fp32", "int8-static"), bench_min_time_s=0.0, baseline=False),
                      ExecutorConfig(executor="sequential"))
    assert [r["id"] for r in report["variants"]] == ["fp32@onnxruntime"]
    (why,) = [s for s in report["skipped"] if s.startswith("int8-static@onnxruntime")]
    assert "builds from calibration data and the run has none; add --calib DATA" in why
    assert not any("int8-static" in step for step in report["steps"]["ran"])
