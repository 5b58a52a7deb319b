"""The prune step: fine-tuning after pruning (the unpruned model teaches), outputs and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.prune.step import prune
from edgeship.compress.train_settings import PruneTraining
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def digits_eval(digits):
    from edgeship.core.data import load_data

    return load_data("data:digits-test", digits.io, limit=200)


@pytest.mark.slow
def test_finetune_recovers_accuracy(digits, digits_eval, tmp_path):
    with one_torch_thread():
        raw = prune(digits, PruneConfig(ratio=0.5), eval_data=digits_eval, quiet=True)
        tuned = prune(digits, PruneConfig(ratio=0.5, train=PruneTraining(epochs=2)), data="data:digits-train",
                      eval_data=digits_eval, out=tmp_path / "ft.pt2", quiet=True)
    assert tuned.report["finetune"]["steps"] == 2 * 43
    assert tuned.report["eval"]["accuracy"] > raw.report["eval"]["accuracy"]
    assert tuned.report["eval"]["accuracy_drop"] < 3.0
    assert (tmp_path / "ft.pt2.ckpt" / "model.safetensors").is_file()
    import torch

    program = torch.export.load(str(tmp_path / "ft.pt2"))  # loads without pickle
    x = torch.from_numpy(np.stack([s["input"][0] for s in digits_eval.samples[:3]]))
    assert torch.allclose(program.module()(x), tuned.source.module(x), atol=1e-5)


def test_finetune_without_data_is_bad_input(digits):
    with pytest.raises(BadInput, match="needs training data"):
        prune(digits, PruneConfig(ratio=0.5, train=PruneTraining(epochs=1)), quiet=True)


def test_a_short_fine_tune_reports_its_settings_and_checkpoints(digits, tmp_path):
    cfg = PruneConfig(ratio=0.5, train=PruneTraining(epochs=1, max_steps=3, lr=2e-3))
    with one_torch_thread():
        result = prune(digits, cfg, data="data:digits-train", out=tmp_path / "p.onnx", quiet=True)
    rep = result.report
    assert rep["finetune"]["steps"] == 3 and rep["finetune"]["checkpoint"] == str(tmp_path / "p.onnx.ckpt")
    assert rep["config"]["train"]["lr"] == 2e-3 and rep["config"]["ratio"] == 0.5
    assert result.model.provenance[0].config == cfg.to_dict()  # the sidecar names the nested settings too
