"""OrtRunner, the one place that opens an ONNX Runtime session: its options on a real session."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput, InternalError
from edgeship.targets.onnxruntime.runner import OrtRunner
from models.tiny import tiny_onnx


def _reference(path, x):
    """The tiny MLP in numpy, from its own initializers."""
    from onnx import numpy_helper

    w = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    h = np.maximum(x @ w["w1"] + w["b1"], 0)
    return h, h @ w["w2"] + w["b2"]


def test_path_model_proto_and_bytes_give_the_same_outputs(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    _, expected = _reference(path, x)
    proto = onnx.load(str(path))
    for model in (path, Model.open(path), proto, proto.SerializeToString()):
        with OrtRunner(model, threads=1) as r:
            got = r.infer({"x": x, "unused_input": x})  # inputs the graph lacks are dropped
        assert list(got) == ["logits"]
        np.testing.assert_allclose(got["logits"], expected, rtol=1e-5, atol=1e-5)


def test_expose_reads_intermediate_tensors_in_graph_order(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    hidden, _ = _reference(path, x)
    with OrtRunner(path, expose="all", graph_optimization="disable") as r:
        outs = r.infer({"x": x})
        order = r.tensor_order
    assert [t for t, _, _ in order] == ["h0", "h1", "h2", "h3", "logits"]
    assert order[2] == ("h2", "relu", "Relu")
    np.testing.assert_allclose(outs["h2"], hidden, rtol=1e-5, atol=1e-5)
    with OrtRunner(path, expose=["h2"], outputs=["h2"]) as r:
        assert list(r.infer({"x": x})) == ["h2"]


def test_graph_optimization_level_is_checked_and_load_errors_are_one_line(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(BadInput, match="graph optimisation 'fast'"):
        OrtRunner(path, graph_optimization="fast")
    proto = onnx.load(str(path))
    proto.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(InternalError, match="ONNX Runtime cannot load"):
        OrtRunner(proto, load_error=InternalError).activate()
    with pytest.raises(BadInput, match="ONNX Runtime cannot load"):
        OrtRunner(proto.SerializeToString()).activate()


def test_exposed_graph_inputs_are_returned_as_fed(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(2).standard_normal((2, 16)).astype(np.float32)
    with OrtRunner(path, expose=["x", "h2"]) as r:
        outs = r.infer({"x": x})
    assert set(outs) == {"logits", "h2", "x"}
    np.testing.assert_array_equal(outs["x"], x)
    with OrtRunner(path, expose=["x"], outputs=["x", "logits"]) as r:
        assert list(r.infer({"x": x})) == ["x", "logits"]
