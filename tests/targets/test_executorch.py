"""ExecuTorch on the digits CNN: XNNPACK fp32 parity with ONNX Runtime, PT2E INT8 accuracy, delegation report."""

from __future__ import annotations

import numpy as np
import pytest
from digits_fixtures import accuracy

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput

pytest.importorskip("executorch")


def test_fp32_matches_onnxruntime(digits_pte, digits_test, ort_logits):
    from edgeship.targets.base import runner_for

    reopened = Model.open(digits_pte.path)
    assert reopened.format == "pte" and reopened.io.input_names == ["input"]
    with runner_for(reopened) as r:  # .pte files run on ExecuTorch by default
        assert r.runtime == "executorch"
        out = r.infer(digits_test[0])["logits"]
    assert out.shape == ort_logits.shape
    assert np.abs(out - ort_logits).max() <= 1e-4


def test_inspect_reads_the_program(digits_pte, tmp_path):
    import shutil

    bare = tmp_path / "bare.pte"
    shutil.copyfile(digits_pte.path, bare)
    io = Model.open(bare).io
    assert [(t.name, t.dtype, t.shape) for t in io.inputs] == [("input_0", "float32", (1, 1, 8, 8))]
    assert io.outputs[0].shape == (1, 10)


def test_delegation_is_reported(digits_pte):
    d = digits_pte.facts["delegation"]
    assert d["delegated_subgraphs"] >= 1
    assert d["delegated_nodes"] > 0
    # convolutions and linear layers are what XNNPACK exists for
    delegated = {op for op, c in d["by_operator"].items() if c["delegated"]}
    assert any("convolution" in op for op in delegated)
    assert any("addmm" in op or "linear" in op or "mm" in op for op in delegated)


def test_int8_keeps_accuracy(digits_source, out_dir, digits_calib, digits_test, ort_logits, digits_pte):
    from edgeship.targets.executorch.runner import ExecuTorchRunner

    m = convert(digits_source, "executorch", out_dir / "digits_int8.pte", precision="int8", calib=digits_calib)
    assert m.facts["quantization"]["calib_samples"] == min(100, len(digits_calib))
    with ExecuTorchRunner(m) as r:
        out = r.infer(digits_test[0])["logits"]
    assert np.abs(out - ort_logits).max() > 1e-3  # really quantized
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    assert m.size_bytes < digits_pte.size_bytes


def test_onnx_input_is_refused_with_the_fix(digits_onnx, out_dir):
    with pytest.raises(BadInput, match="PyTorch source"):
        convert(digits_onnx, "executorch", out_dir / "nope.pte")


def test_int8_needs_calibration(digits_source, out_dir):
    with pytest.raises(BadInput, match="calibration"):
        convert(digits_source, "executorch", out_dir / "nope8.pte", precision="int8")
    assert not (out_dir / "nope8.pte").exists()


def test_threads_size_the_process_threadpool(digits_pte, digits_test, ort_logits):
    from executorch.extension.pybindings import portable_lib

    from edgeship.targets.base import runner_for

    before = portable_lib._threadpool_get_thread_count()
    try:
        with runner_for(Model.open(digits_pte.path), threads=1) as r:
            out = r.infer(digits_test[0])["logits"]
            assert portable_lib._threadpool_get_thread_count() == 1
        assert np.abs(out - ort_logits).max() <= 1e-4
    finally:
        portable_lib._unsafe_reset_threadpool(before)
