"""Op placement per target on the digits CNN, from each runtime's own report or the op tables."""

from __future__ import annotations

import pytest

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.base import all_targets, get_target
from edgeship.targets.placement import op_table, placement


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


def test_executorch_delegated_vs_portable(digits_pte):
    report = placement(Model.open(digits_pte.path), "executorch")  # the record travels in the sidecar
    assert report.source == "delegation"
    assert report.summary.get("XNNPACK", 0) == digits_pte.facts["delegation"]["delegated_nodes"] > 0
    assert report.summary.get("portable", 0) == digits_pte.facts["delegation"]["portable_nodes"]
    assert any("convolution" in r.op and r.where == "XNNPACK" for r in report.rows)


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


def test_placement_is_a_capability_of_the_target(digits_onnx):
    able = {t.name for t in all_targets() if t.reports_placement}
    assert {"onnxruntime", "onnxruntime-cuda", "openvino", "executorch", "tflite", "tflite-micro"} <= able
    assert not {"torch", "coreml", "tensorrt"} & able
    report = get_target("onnxruntime").placement(digits_onnx)  # the same as placement(model, "onnxruntime")
    assert report.target == "onnxruntime" and report.rows
    with pytest.raises(BadInput, match=r"^target 'coreml' cannot report op placement$"):
        placement(digits_onnx, "coreml")


def test_absent_execution_provider_cannot_place(digits_onnx):
    from edgeship.core.errors import NotRunnableHere

    target = get_target("onnxruntime-qnn")
    if target.availability().runs_here:
        pytest.skip("the QNN provider is present")
    with pytest.raises(NotRunnableHere, match="QNNExecutionProvider"):
        placement(digits_onnx, "onnxruntime-qnn")
