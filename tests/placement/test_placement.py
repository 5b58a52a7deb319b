"""Op placement per target on the digits CNN, from each runtime's own report or the op tables."""

from __future__ import annotations

import pytest

from edgeship.core.errors import BadInput
from edgeship.placement.plan import op_table, placement
from edgeship.targets.convert import convert


def test_onnxruntime_profiling_places_every_node_on_cpu(digits_onnx):
    report = placement(digits_onnx, "onnxruntime")
    assert report.source == "profiling"
    assert report.rows and set(report.summary) == {"CPUExecutionProvider"}
    assert "Conv" in {r.op for r in report.rows}
    assert report.to_dict()["summary"]["CPUExecutionProvider"] == len(report.rows)


def test_openvino_query_model_supports_every_op(digits_onnx):
    pytest.importorskip("openvino")
    report = placement(digits_onnx, "openvino")
    assert report.source == "query_model" and not report.unsupported
    assert {"Convolution", "MaxPool"} <= {r.op for r in report.rows}
    assert set(report.summary) == {"CPU"}


def test_executorch_delegated_vs_portable(digits_source, out_dir):
    pytest.importorskip("executorch")
    pte = out_dir / "digits.pte"
    model = convert(digits_source, "executorch", pte) if not pte.exists() else __import__(
        "edgeship.core.artifact", fromlist=["Model"]).Model.open(pte)
    report = placement(model, "executorch")
    assert report.summary.get("XNNPACK", 0) == model.facts["delegation"]["delegated_nodes"]
    assert report.summary.get("portable", 0) == model.facts["delegation"]["portable_nodes"]


def test_executorch_without_record_is_bad_input(digits_onnx):
    with pytest.raises(BadInput, match="delegation record"):
        placement(digits_onnx, "executorch")


@pytest.mark.slow
def test_tflite_ops_against_tables(digits_onnx, digits_calib, out_dir):
    pytest.importorskip("onnx2tf")
    model = convert(digits_onnx, "tflite", out_dir / "place_int8.tflite", precision="int8", calib=digits_calib)
    lite = placement(model, "tflite")
    ops = {r.op for r in lite.rows}
    assert {"CONV_2D", "FULLY_CONNECTED", "QUANTIZE"} <= ops
    assert lite.summary.get("XNNPACK", 0) == len(lite.rows)  # a plain CNN is all XNNPACK
    micro = placement(model, "tflite-micro")
    assert not micro.unsupported


def test_op_tables_are_versioned_data():
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= op_table("xnnpack")
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "QUANTIZE"} <= op_table("tflite_micro")
    assert "FLEX_DELEGATE" not in op_table("tflite_micro")


def test_unknown_target_lists_the_known():
    with pytest.raises(BadInput, match=r"known: .*openvino"):
        placement(None, "edgetpu")
