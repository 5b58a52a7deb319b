"""The done-when figures: zoo models exported and checked on their held-out data in ONNX Runtime.

- MiniLM: cosine ≥ 0.99999 (mean and min) on held-out sentences; batch and sequence dims dynamic;
- EfficientNet-Lite0 and the digits CNN: top-1 agreement 100% on their held-out data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship.cli.main import main
from edgeship.core.artifact import Model
from edgeship.export.config import ExportConfig
from edgeship.export.exporter import export
from edgeship.zoo.base import load_zoo

pytestmark = pytest.mark.slow
ALL = 10_000  # more than any held-out split: parity uses all of it


def _held_out(model: Model) -> dict:
    parity = model.facts["parity"]
    assert parity["passed"] is True, parity["why"]
    return parity


def test_digits_cnn_top1_agreement_on_all_held_out_digits(tmp_path: Path) -> None:
    model = export("zoo:digits-cnn", tmp_path / "digits.onnx", ExportConfig(parity_samples=ALL))
    parity = _held_out(model)
    assert parity["data"] == "data:digits-test" and parity["samples"] == 450
    logits = parity["outputs"]["logits"]
    assert logits["top1_agreement"] == 1.0
    assert logits["accuracy"] == logits["ref_accuracy"] > 95.0  # labels ride along: same accuracy as PyTorch
    assert model.io.inputs[0].shape[0] == "batch"


def test_efficientnet_lite0_top1_agreement_on_held_out_photos(tmp_path: Path) -> None:
    model = export("zoo:efficientnet-lite0", tmp_path / "effnet.onnx", ExportConfig(parity_samples=ALL))
    parity = _held_out(model)
    assert parity["data"] == "data:images:test" and parity["samples"] >= 100
    assert parity["outputs"]["logits"]["top1_agreement"] == 1.0
    assert parity["outputs"]["logits"]["cosine_min"] >= 0.99999


def test_minilm_cosine_on_held_out_sentences_and_dynamic_lengths(tmp_path: Path) -> None:
    source = load_zoo("minilm")  # built once: exported, then reused as the PyTorch reference below
    model = export(source, tmp_path / "minilm.onnx", ExportConfig(parity_samples=ALL))
    parity = _held_out(model)
    assert parity["data"] == "data:sentences:test" and parity["samples"] >= 100
    emb = parity["outputs"]["sentence_embedding"]
    assert emb["cosine_mean"] >= 0.99999 and emb["cosine_min"] >= 0.99999
    assert "top1_agreement" not in emb  # an embedding is not a classifier
    for spec in model.io.inputs:
        assert spec.shape == ("batch", "sequence")
    # Two batches of different sequence lengths through the same file, against PyTorch.
    tok = source.extra["tokenizer"]
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    lengths = set()
    for texts in (["ok"], ["Which of these two sentences is longer than the other one, by how many words?",
                           "The short one."]):
        enc = tok(texts, return_tensors="np", padding=True)
        feeds = {n: enc[n].astype(np.int64) for n in model.io.input_names}
        lengths.add(feeds["input_ids"].shape)
        got = session.run(None, feeds)[0]
        want = source.forward_numpy(feeds)["sentence_embedding"]
        cos = (got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
        assert got.shape == (len(texts), 384) and cos.min() >= 0.99999
    assert len(lengths) == 2


def test_cli_exports_digits_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digits.onnx"
    assert main(["export", "zoo:digits-cnn", "-o", str(out), "--json", "--exporter", "legacy", "--limit", "64"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and report["facts"]["exporter"] == "legacy"
    assert report["facts"]["parity"]["outputs"]["logits"]["top1_agreement"] == 1.0
    assert Model.open(out).facts["parity"]["samples"] == 64
