"""PyTorch eager: the reference runner of a TorchSource, and what a check's PyTorch subject runs on."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.errors import BadInput
from edgeship.targets.base import get_target, runner_for_subject


def test_runs_the_source_like_onnxruntime_runs_its_export(digits_source, digits_test, ort_logits):
    with get_target("torch").runner(digits_source) as r:
        assert r.runtime == "pytorch" and r.model.format == "torch" and r.name == "pytorch:zoo:digits-cnn"
        assert r.io == digits_source.io
        out = r.infer(digits_test[0])["logits"]
    np.testing.assert_allclose(out, ort_logits, atol=1e-4)


def test_threads_set_torch_intra_op_threads(digits_source, digits_test):
    import torch

    before = torch.get_num_threads()
    try:
        with get_target("torch").runner(digits_source, threads=1) as r:
            r.infer({"input": digits_test[0]["input"][:2]})
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_pytorch_subject_runs_eagerly_and_goldens_do_not_run(digits_source):
    from edgeship.sources.subject import Subject

    runner = runner_for_subject(Subject("zoo:digits-cnn", digits_source.io, source=digits_source))
    assert runner.runtime == "pytorch"
    with pytest.raises(BadInput, match="stored golden outputs cannot be run"):
        runner_for_subject(Subject("golden.npz", digits_source.io))


def test_the_torch_target_does_not_convert(digits_source, tmp_path):
    with pytest.raises(BadInput, match="cannot convert"):
        get_target("torch").convert(digits_source, tmp_path / "x")
