"""ONNX files from other exporters: -1 (and unnamed) dims are "any size", --shape fixes them."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.core import onnx_file
from edgeship.core.artifact import Model
from edgeship.core.data import load_data, parse_shapes
from edgeship.core.errors import BadInput


def caffe2_style_conv(path, external=False):
    """A Conv+Relu the way older exporters wrote them: IR 3, opset 7, weights listed as graph inputs,
    -1 for the free dims; weights in an external data file when ``external``."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, -1, -1]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 4, -1, -1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    if external:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def test_minus_one_dims_are_any_size_and_initializer_inputs_are_not_inputs(tmp_path):
    model = Model.open(caffe2_style_conv(tmp_path / "c.onnx"))
    (x,) = model.io.inputs
    assert x.name == "x" and x.shape == (None, 3, None, None) and x.is_dynamic
    with pytest.raises(BadInput, match=r"symbolic dim None at axis 2; fix it with --shape x:1,3,N,N"):
        load_data("data:synthetic", model.io)
    ds = load_data("data:synthetic", model.io, shapes=parse_shapes(["x:2,3,8,8"]), limit=2)
    assert ds.samples[0]["x"].shape == (2, 3, 8, 8)
    np.savez(tmp_path / "d.npz", x=np.ones((5, 3, 6, 7), np.float32))  # any size fits
    assert len(load_data(tmp_path / "d.npz", model.io)) == 5


def test_with_fixed_dims_fixes_free_dims_and_refuses_conflicts(tmp_path):
    proto = onnx_file.load(caffe2_style_conv(tmp_path / "c.onnx", external=True))
    fixed = onnx_file.with_fixed_dims(proto, {"x": (1, 3, 16, 16)})
    assert onnx_file.io_spec(fixed).inputs[0].shape == (1, 3, 16, 16)
    assert onnx_file.io_spec(proto).inputs[0].shape == (None, 3, None, None)  # the original is left alone
    with pytest.raises(BadInput, match="axis 1 is fixed to 3 in the model, not 4"):
        onnx_file.with_fixed_dims(proto, {"x": (1, 4, 16, 16)})
    with pytest.raises(BadInput, match="3 dims given, the model's input has 4"):
        onnx_file.with_fixed_dims(proto, {"x": (1, 3, 16)})
    with pytest.raises(BadInput, match=r"--shape names w2, not inputs of the model \(x\)"):
        onnx_file.with_fixed_dims(proto, {"w2": (1,)})
