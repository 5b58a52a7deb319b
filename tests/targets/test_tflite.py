"""TFLite (LiteRT) from ONNX through onnx2tf on the digits CNN: fp32 parity with ONNX Runtime in the ONNX
layout, fp16/dynamic-range/full INT8 accuracy, keep_nchw and litert-torch (TFLite Micro: test_tflite_micro.py).

onnx2tf needs TensorFlow (slow to import and convert on 2 cores): one conversion per precision, shared."""

from __future__ import annotations

import numpy as np
import pytest
from digits_fixtures import accuracy

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput

pytest.importorskip("onnx2tf")
pytest.importorskip("ai_edge_litert")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tfl_fp32(digits_onnx, out_dir):
    return convert(digits_onnx, "tflite", out_dir / "digits_fp32.tflite")


@pytest.fixture(scope="module")
def tfl_int8(digits_onnx, out_dir, digits_calib):
    return convert(digits_onnx, "tflite", out_dir / "digits_int8.tflite", precision="int8", calib=digits_calib)


def _run(model, feeds):
    from edgeship.targets.base import runner_for

    with runner_for(model) as r:
        assert r.runtime == "litert"
        return r.infer(feeds)["logits"]


def test_fp32_matches_onnxruntime_in_onnx_layout(tfl_fp32, digits_test, ort_logits):
    # the file itself is channels-last; the sidecar says so and the runner transposes at the boundary
    assert tfl_fp32.facts["input_layout"] == {"input": "NHWC"}
    assert tfl_fp32.facts["tflite"]["inputs"][0]["perm"] == [0, 2, 3, 1]
    out = _run(Model.open(tfl_fp32.path), digits_test[0])  # whole batch: the runner resizes the input
    assert np.abs(out - ort_logits).max() <= 1e-4


def test_inspect_reads_the_file_itself(tfl_fp32, tmp_path):
    import shutil

    bare = tmp_path / "bare.tflite"  # no sidecar: the IO spec comes from the flatbuffer, as LiteRT sees it
    shutil.copyfile(tfl_fp32.path, bare)
    io = Model.open(bare).io
    assert [t.shape for t in io.inputs] == [(None, 8, 8, 1)] and io.inputs[0].dtype == "float32"
    assert io.outputs[0].shape == (None, 10)


def test_int8_keeps_accuracy(tfl_int8, tfl_fp32, digits_test, ort_logits):
    # float I/O unless int8_io is asked for: the file quantizes its input itself
    assert [m["dtype"] for m in tfl_int8.facts["tflite"]["inputs"]] == ["float32"]
    out = _run(tfl_int8, digits_test[0])
    assert np.abs(out - ort_logits).max() > 1e-3
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    assert tfl_int8.size_bytes < tfl_fp32.size_bytes / 2


@pytest.mark.parametrize("precision", ["fp16", "int8-dynamic"])
def test_float_io_variants(precision, digits_onnx, out_dir, digits_test, ort_logits):
    m = convert(digits_onnx, "tflite", out_dir / f"digits_{precision}.tflite", precision=precision)
    out = _run(m, digits_test[0])
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    if precision == "fp16":
        assert np.abs(out - ort_logits).max() < 0.05


def test_int8_needs_calibration(digits_onnx, out_dir):
    with pytest.raises(BadInput, match="calibration"):
        convert(digits_onnx, "tflite", out_dir / "nocalib.tflite", precision="int8")


def test_from_pytorch_through_litert_torch(digits_source, out_dir, digits_test, ort_logits):
    pytest.importorskip("litert_torch")
    m = convert(digits_source, "tflite", out_dir / "digits_lt.tflite")
    assert m.facts["frontend"] == "litert-torch"
    out = _run(m, digits_test[0])  # a fixed batch of 1: the runner feeds row by row
    assert np.abs(out - ort_logits).max() <= 1e-4
    with pytest.raises(BadInput, match="ONNX"):
        convert(digits_source, "tflite", out_dir / "digits_lt8.tflite", precision="int8")


def test_keep_nchw_keeps_the_users_layout(digits_onnx, out_dir, digits_test, ort_logits):
    m = convert(digits_onnx, "tflite", out_dir / "digits_nchw.tflite", keep_nchw=True)
    assert m.facts["input_layout"] == {"input": "NCHW"} and m.facts["tflite"]["inputs"][0]["perm"] is None
    out = _run(m, digits_test[0])
    assert np.abs(out - ort_logits).max() <= 1e-4


def test_given_shapes_fix_the_files_inputs(digits_onnx, out_dir, digits_test, ort_logits):
    """The export's batch is dynamic; shapes given to the converter are the file's (a static program, as
    an accelerator delegate wants), and the rows still match ONNX Runtime."""
    from ai_edge_litert.interpreter import Interpreter

    free = Interpreter(str(convert(digits_onnx, "tflite", out_dir / "digits_free.tflite").path))
    assert free.get_input_details()[0]["shape_signature"][0] == -1
    m = convert(digits_onnx, "tflite", out_dir / "digits_b4.tflite", shapes={"input": [4, 1, 8, 8]})
    (detail,) = Interpreter(str(m.path)).get_input_details()
    assert list(detail["shape_signature"]) == [4, 8, 8, 1] and m.facts["conversion_shapes"] == {"input": [4, 1, 8, 8]}
    out = _run(m, {"input": digits_test[0]["input"][:4]})
    assert out.shape[0] == 4 and np.abs(out - ort_logits[:4]).max() <= 1e-4
