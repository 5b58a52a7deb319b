"""OpenVINO fp16 and INT8 keep in f32 what the lower precision cannot hold: activations that shrink
to ~1e-20 (a randomly initialised Hugging Face MobileNetV2 does that) came out as exact zeros."""

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.api import convert
from edgeship.check.judge import judge
from edgeship.core.artifact import Model
from edgeship.targets.base import runner_for

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def shrinking_convs(path, scale):
    """Four 3x3 convolutions whose weights are ``scale`` times a He init: each layer multiplies the
    activations' magnitude by about ``scale``."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(4):
        w = rng.standard_normal((8, 8 if i else 3, 3, 3)) * np.sqrt(2 / (9 * (8 if i else 3))) * scale
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        prev = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["y"]))
    graph = helper.make_graph(nodes, "shrinking",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return Model.open(path)


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    np.savez(path, x=np.random.default_rng(1).standard_normal((16, 1, 3, 16, 16)).astype(np.float32))
    return str(path)


def _judged(ref_model, cand_model, precision, feeds):
    with runner_for(ref_model, "onnxruntime") as r, runner_for(cand_model, "openvino") as c:
        ref = [r.infer(f) for f in feeds]
        cand = [c.infer(f) for f in feeds]
    return judge(ref, cand, precision=precision)


def test_fp16_runs_in_f32_where_f16_outputs_would_be_zero(tmp_path, calib):
    tiny = shrinking_convs(tmp_path / "tiny.onnx", 1e-5)
    feeds = [{"x": np.random.default_rng(i).standard_normal((1, 3, 16, 16)).astype(np.float32)} for i in range(4)]
    from edgeship.targets.cpu import openvino_capabilities

    raw = convert(tiny, "openvino", tmp_path / "raw16.xml", precision="fp16", keep_breaking_layers=False)
    kept = convert(tiny, "openvino", tmp_path / "tiny16.xml", precision="fp16")
    assert _judged(tiny, kept, "fp16", feeds).passed
    if "FP16" not in (openvino_capabilities() or ()):
        # no native f16 (no AVX512-FP16): the plugin runs f16 as bf16, whose exponent range is f32's;
        # nothing underflows, so the guard keeps nothing
        assert _judged(tiny, raw, "fp16", feeds).passed and "kept_in_higher_precision" not in kept.facts
        return
    assert "values are zero" in _judged(tiny, raw, "fp16", feeds).why  # what used to happen, named
    assert kept.facts["inference_precision"] == "f32"
    why = kept.facts["kept_in_higher_precision"]["why"]
    assert re.match(r"at f16 output y: all \d+ values are zero \(the reference's reach [0-9.e-]+\); \d+ of \d+ layer "
                    r"outputs lie below fp16's normal range", why), why


def test_int8_leaves_layers_with_vanishing_inputs_in_f32(tmp_path, calib):
    tiny = shrinking_convs(tmp_path / "tiny.onnx", 1e-5)
    feeds = [{"x": np.random.default_rng(i).standard_normal((1, 3, 16, 16)).astype(np.float32)} for i in range(4)]
    m = convert(tiny, "openvino", tmp_path / "tiny8.xml", precision="int8", calib=calib)
    assert m.facts["kept_in_higher_precision"]["layers"] >= 2
    res = _judged(tiny, m, "int8", feeds)
    assert res.passed, res.why


def test_healthy_models_keep_f16_and_full_int8(tmp_path, calib):
    normal = shrinking_convs(tmp_path / "normal.onnx", 1.0)
    f16 = convert(normal, "openvino", tmp_path / "n16.xml", precision="fp16")
    assert f16.facts["inference_precision"] == "f16" and "kept_in_higher_precision" not in f16.facts
    i8 = convert(normal, "openvino", tmp_path / "n8.xml", precision="int8", calib=calib)
    assert "kept_in_higher_precision" not in i8.facts and i8.facts["nncf"]["kept_f32_ops"] == 0
