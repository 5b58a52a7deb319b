"""Writing compressed modules: the output suffixes, checkpoints beside them, and the parity check of an
ONNX file against its torch module through the one comparison engine (the FP32 tolerance)."""

from __future__ import annotations

import dataclasses

import pytest
from compress_models import digits_source

from edgeship.compress import output
from edgeship.core.errors import BadInput, GateFailed


@pytest.fixture(scope="module")
def digits_onnx(tmp_path_factory):
    from edgeship.export.exporter import export

    path = tmp_path_factory.mktemp("out") / "digits.onnx"
    export(digits_source(), path)
    return path


def test_output_suffixes_and_checkpoint_folder(tmp_path):
    assert output.check_output(None) is None
    with pytest.raises(BadInput, match=r"give a \.onnx file"):
        output.check_output(tmp_path / "m.tflite")
    ckpt = output.checkpoint_dir(tmp_path / "m.onnx")
    assert ckpt == tmp_path / "m.onnx.ckpt" and not ckpt.exists()
    ckpt.mkdir()
    (ckpt / "state.json").write_text("{}")
    assert output.checkpoint_dir(tmp_path / "m.onnx", fresh=True) == ckpt and not ckpt.exists()


def test_parity_passes_for_the_module_and_fails_for_another(digits_onnx):
    import torch

    source = digits_source()
    metrics = output.check_onnx_parity(source, digits_onnx)
    assert metrics["rel_err_max"] <= 1e-4 and metrics["cosine_min"] >= 0.99999  # check/tolerances.yaml fp32
    other = type(source.module)()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.5)
    changed = dataclasses.replace(source, module=other.eval())
    with pytest.raises(GateFailed, match=r"differs from the torch module .*rel_err_max=.*fails <=0\.0001"):
        output.check_onnx_parity(changed, digits_onnx)
