"""Structured pruning on real models: the zoo's digits CNN (channels) and a tiny BERT (heads, MLP neurons)."""

from __future__ import annotations

import numpy as np
import pytest
from compress_models import digits_source, tiny_bert_source, token_dataset

from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.prune.step import prune
from edgeship.core.errors import BadInput
from edgeship.targets.onnxruntime.runner import OrtRunner


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def digits_eval(digits):
    from edgeship.core.data import load_data

    return load_data("data:digits-test", digits.io, limit=200)


def _ort(path, feeds):
    with OrtRunner(path) as runner:
        return next(iter(runner.infer(feeds).values()))


def test_structured_prune_shrinks_channels_keeps_the_classifier_and_exports(digits, digits_eval, tmp_path):
    out = tmp_path / "p50.onnx"
    result = prune(digits, PruneConfig(ratio=0.5), out=out, eval_data=digits_eval, quiet=True)
    rep = result.report
    conv0 = result.source.module.features[0]
    assert conv0.out_channels == 8  # 16 → 8
    assert rep["params"]["after"] < 0.4 * rep["params"]["before"]
    assert rep["macs"]["ratio"] < 0.5
    skipped = {s["layer"]: s["why"] for s in rep["skipped"]}
    assert skipped == {"classifier.3": "its output channels are the model's output"}
    # the written file is a smaller dense model that still returns 10 logits
    x = np.stack([s["input"][0] for s in digits_eval.samples[:5]])
    logits = _ort(out, {"input": x})
    assert logits.shape == (5, 10)
    assert np.allclose(logits, result.source.forward_numpy({"input": x})["logits"], atol=1e-4)
    assert result.model.provenance[0].stage == "prune" and result.model.provenance[0].config["ratio"] == 0.5
    assert 0.5 < rep["eval"]["top1_agreement"] < 1.0  # pruned without fine-tune: close, not identical


def test_keep_layer_is_reported_and_unknown_layer_is_bad_input(digits):
    result = prune(digits, PruneConfig(ratio=0.5, keep=("features.0",)), quiet=True)
    assert result.source.module.features[0].out_channels == 16
    assert {"layer": "features.0", "type": "Conv2d", "why": "kept on request (keep)"} in result.report["skipped"]
    with pytest.raises(BadInput, match="no layer named nope"):
        prune(digits, PruneConfig(ratio=0.5, keep=("nope",)), quiet=True)


def test_importance_rules(digits):
    with pytest.raises(BadInput, match="no BatchNorm"):
        prune(digits, PruneConfig(ratio=0.5, importance="bn-scale"), quiet=True)
    with pytest.raises(BadInput, match="labelled data"):
        prune(digits, PruneConfig(ratio=0.5, importance="taylor"), quiet=True)
    taylor = prune(digits, PruneConfig(ratio=0.5, importance="taylor"), data="data:digits-calib", quiet=True)
    assert taylor.source.module.features[0].out_channels == 8


@pytest.mark.slow
def test_transformer_heads_and_mlp_neurons(tmp_path):
    src = tiny_bert_source(layers=2, heads=4, hidden=32)
    out = tmp_path / "bert.onnx"
    result = prune(src, PruneConfig(ratio=0.5), out=out, eval_data=token_dataset(8), quiet=True)
    bert = result.source.module.bert
    for layer in bert.encoder.layer:
        assert layer.attention.self.num_attention_heads == 2
        assert layer.attention.self.query.out_features == 16
        assert layer.intermediate.dense.out_features == 64  # 128 → 64 MLP neurons
        assert layer.output.dense.out_features == 32  # the residual width is the output: kept
    assert result.report["attention_heads"] == {f"bert.encoder.layer.{i}.attention.self": 2 for i in range(2)}
    for n in (3, 9):  # the exported graph keeps its dynamic sequence axis
        ids = np.arange(4, 4 + n, dtype=np.int64)[None]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        emb = _ort(out, feeds)
        assert emb.shape == (1, 32)
        assert np.allclose(emb, result.source.forward_numpy(feeds)["sentence_embedding"], atol=1e-4)


def test_round_to_keeps_channel_counts_multiples(digits):
    result = prune(digits, PruneConfig(ratio=0.3, round_to=8), quiet=True)
    convs = [result.source.module.features[0], result.source.module.features[2]]
    assert [c.out_channels % 8 for c in convs] == [0, 0]
    assert convs[1].out_channels < 32

