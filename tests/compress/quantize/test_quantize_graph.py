"""Graph rewrites that let ORT's transformer fuser match exported encoders: same outputs, new shape."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress.quantize.graph import canonicalize_for_fusion, run_outputs


def _model() -> onnx.ModelProto:
    """mask [b, s] → Unsqueeze(axes=[1, 2]); x [b, s, 8] → ReduceL2 over the last axis (opset 18)."""
    nodes = [
        helper.make_node("Unsqueeze", ["mask", "axes12"], ["mask4d"], name="unsq"),
        helper.make_node("ReduceL2", ["x", "axes_last"], ["norm"], name="l2", keepdims=1),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["b", "s"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 8])],
        [helper.make_tensor_value_info("mask4d", TensorProto.FLOAT, ["b", 1, 1, "s"]),
         helper.make_tensor_value_info("norm", TensorProto.FLOAT, ["b", "s", 1])],
        [numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes12"),
         numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes_last")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_canonicalize_keeps_outputs_and_splits_the_patterns() -> None:
    rng = np.random.default_rng(0)
    feeds = [{"mask": (rng.random((2, 5)) > 0.3).astype(np.float32),
              "x": rng.standard_normal((2, 5, 8)).astype(np.float32)}]
    before = _model()
    after = _model()
    done = canonicalize_for_fusion(after)
    onnx.checker.check_model(after)
    assert len(done) == 2
    ops = Counter(n.op_type for n in after.graph.node)
    assert ops["Unsqueeze"] == 2 and ops["ReduceL2"] == 0 and ops["Sqrt"] == 1
    ref = run_outputs(before.SerializeToString(), feeds)[0]
    got = run_outputs(after.SerializeToString(), feeds)[0]
    assert got["mask4d"].shape == ref["mask4d"].shape == (2, 1, 1, 5)
    np.testing.assert_array_equal(got["mask4d"], ref["mask4d"])
    np.testing.assert_allclose(got["norm"], ref["norm"], rtol=1e-6)


def test_canonicalize_leaves_other_graphs_alone() -> None:
    m = _model()
    del m.graph.node[:]
    m.graph.node.append(helper.make_node("Unsqueeze", ["mask", "axes_last"], ["mask4d"], name="one_axis"))
    assert canonicalize_for_fusion(m) == []


def test_canonicalize_rewrites_sliced_shape_of_a_twin_input() -> None:
    """``Shape(token_type_ids, start=1, end=2)`` → ``Unsqueeze(Gather(Shape(input_ids), 1), 0)``: the
    two inputs are declared with the same dims, so the value is the same."""
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    types = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        [helper.make_node("Shape", ["token_type_ids"], ["seq"], name="seq_len", start=1, end=2),
         helper.make_node("Add", ["input_ids", "token_type_ids"], ["sum"], name="add")],
        "g", [ids, types],
        [helper.make_tensor_value_info("seq", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("sum", TensorProto.INT64, ["batch", "sequence"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    done = canonicalize_for_fusion(model)
    onnx.checker.check_model(model)
    assert done == ["Shape seq_len as Unsqueeze(Gather(Shape))"]
    shape = next(n for n in model.graph.node if n.op_type == "Shape")
    assert shape.input[0] == "input_ids" and not shape.attribute
    feeds = [{"input_ids": np.ones((2, 7), np.int64), "token_type_ids": np.zeros((2, 7), np.int64)}]
    out = run_outputs(model.SerializeToString(), feeds)[0]
    assert out["seq"].tolist() == [7]
