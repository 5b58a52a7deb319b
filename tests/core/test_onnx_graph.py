"""Graph helpers shared by the exporter, the quantizers and the targets."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from edgeship.core.errors import BadInput
from edgeship.core.onnx_graph import finish_graph, is_transformer, rename_outputs, unique_names, value_names
from models.tiny import tiny_onnx


def test_unique_names():
    assert unique_names(["out", "out", "x", "out"]) == ["out", "out_1", "x", "out_2"]


def test_rename_outputs_frees_a_clashing_internal_name(tmp_path):
    proto = onnx.load(str(tiny_onnx(tmp_path / "m.onnx")))
    rename_outputs(proto, ["relu_out"])
    assert [o.name for o in proto.graph.output] == ["relu_out"]
    proto2 = onnx.load(str(tiny_onnx(tmp_path / "m.onnx")))
    rename_outputs(proto2, ["h2"])  # h2 is the Relu's output inside the graph
    assert [o.name for o in proto2.graph.output] == ["h2"]
    assert "h2__1" in value_names(proto2)
    onnx.checker.check_model(proto2)
    with pytest.raises(BadInput, match="2 output names"):
        rename_outputs(proto2, ["a", "b"])


def test_finish_graph_names_dynamic_dims_and_refuses_invalid_graphs(tmp_path):
    proto = onnx.load(str(tiny_onnx(tmp_path / "m.onnx")))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "s77"
    done = finish_graph(proto, ["logits"], {"x": {0: "batch"}})
    assert done.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    broken = helper.make_model(helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "g", [],
                                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]))
    with pytest.raises(BadInput, match="fails the ONNX checker"):
        finish_graph(broken, ["y"], {})


def test_is_transformer_needs_tokens_softmax_and_norms(tmp_path):
    assert not is_transformer(onnx.load(str(tiny_onnx(tmp_path / "m.onnx"))))
