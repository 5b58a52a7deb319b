"""OpenVINO on the digits CNN: f32 parity with ONNX Runtime, bf16/f16 as explicit variants, NNCF INT8."""

from __future__ import annotations

import numpy as np
import pytest
from digits_fixtures import accuracy

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.openvino.target import OpenVinoTargetConfig

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ov_fp32(digits_onnx, out_dir):
    return convert(digits_onnx, "openvino", out_dir / "digits_ov.xml")


def test_fp32_matches_onnxruntime(ov_fp32, digits_test, ort_logits):
    from edgeship.targets.base import runner_for

    weights = ov_fp32.path.with_suffix(".bin")
    assert weights.is_file()
    assert ov_fp32.size_bytes == ov_fp32.path.stat().st_size + weights.stat().st_size  # the .bin counts
    assert ov_fp32.facts["inference_precision"] == "f32"
    reopened = Model.open(ov_fp32.path)  # from the sidecar
    assert reopened.io == ov_fp32.io and reopened.format == "openvino"
    with runner_for(reopened) as r:
        out = r.infer(digits_test[0])["logits"]
        assert r.info["inference_precision"] == "f32"
    assert np.abs(out - ort_logits).max() <= 1e-4


def test_inspect_reads_the_ir(ov_fp32, tmp_path):
    import shutil

    for suffix in (".xml", ".bin"):
        shutil.copyfile(ov_fp32.path.with_suffix(suffix), (tmp_path / "bare").with_suffix(suffix))
    io = Model.open(tmp_path / "bare.xml").io
    assert [(t.name, t.dtype, t.shape) for t in io.inputs] == [("input", "float32", (None, 1, 8, 8))]
    assert io.outputs[0].name == "logits"


def test_bf16_is_an_explicit_variant(digits_onnx, out_dir, digits_test, ort_logits):
    from edgeship.targets.openvino.runner import OpenVinoRunner

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_bf16.xml", precision="bf16")
    with OpenVinoRunner(m) as r:
        out = r.infer(digits_test[0])["logits"]
        assert r.info["inference_precision"] in ("bf16", "bfloat16")
    err = np.abs(out - ort_logits).max()
    # bf16 keeps 8 mantissa bits: visibly off from f32, yet the same answers
    assert 1e-4 < err < 0.5
    assert abs(accuracy(out, digits_test[1]) - accuracy(ort_logits, digits_test[1])) <= 1.0


def test_nncf_int8_keeps_accuracy(digits_onnx, out_dir, digits_test, digits_calib, ort_logits, ov_fp32):
    from edgeship.targets.openvino.runner import OpenVinoRunner

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_int8.xml", precision="int8", calib=digits_calib)
    assert m.facts["precision"] == "int8" and m.facts["nncf"]["subset_size"] == len(digits_calib)
    with OpenVinoRunner(m) as r:
        out = r.infer(digits_test[0])["logits"]
    assert np.abs(out - ort_logits).max() > 1e-3  # really quantized
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    assert m.path.with_suffix(".bin").stat().st_size < ov_fp32.path.with_suffix(".bin").stat().st_size


def test_int8_without_calibration_is_bad_input(digits_onnx, out_dir):
    with pytest.raises(BadInput, match="calibration"):
        convert(digits_onnx, "openvino", out_dir / "x.xml", precision="int8")
    assert not (out_dir / "x.xml").exists()


def test_config_round_trip_and_validation():
    cfg = OpenVinoTargetConfig(precision="int8", model_type="transformer", calib_samples=50)
    assert OpenVinoTargetConfig.from_json(cfg.to_json()) == cfg
    assert OpenVinoTargetConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(BadInput, match="precision"):
        OpenVinoTargetConfig(precision="int4")
    with pytest.raises(BadInput, match="model_type"):
        OpenVinoTargetConfig(model_type="cnn")


def test_failure_after_conversion_is_reported_with_the_per_output_error(digits_source, digits_onnx, out_dir):
    """bf16 passes its own (bf16) gates but not FP32 parity: judged on OpenVINO's own outputs, it fails, and the
    report carries the per-output error that failed it."""
    from edgeship.check.comparator import check

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_bf16_gate.xml", precision="bf16")
    strict = check(digits_source, [m], data="data:digits-test", runtime="openvino", precision="fp32", limit=64)
    cand = strict.to_dict()["candidates"][0]
    assert cand["status"] == "fail" and "rel_err_max" in cand["why"]
    assert cand["outputs"]["logits"]["max_abs"] > 1e-3
    own = check(digits_source, [m], data="data:digits-test", runtime="openvino", limit=64)
    assert own.candidates[0].status == "pass"  # its precision's default gates
