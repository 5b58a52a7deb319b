"""Fixtures shared by the quantization tests: a tiny MLP with calibration data, a tiny BERT encoder
(random weights, exported once per session) with token data of varied lengths, and the MiniLM ONNX
export (slow, built once per session, only for tests marked slow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from models.tiny import tiny_onnx

os.environ.setdefault("USE_TF", "0")


@pytest.fixture(scope="session")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("mlp") / "mlp.onnx")


@pytest.fixture(scope="session")
def mlp_calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("mlp-data") / "calib.npz"
    np.savez(path, x=rng.standard_normal((48, 16)).astype(np.float32))
    return path


@pytest.fixture(scope="session")
def mlp_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("mlp-test") / "test.npz"
    np.savez(path, x=rng.standard_normal((64, 16)).astype(np.float32))
    return path


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT (hidden 64, 4 heads, vocab 300, random weights with outlier channels) returning
    mean-pooled embeddings."""
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64, attn_implementation="eager")
    encoder = transformers.BertModel(cfg).eval()
    # Real encoders have a few outlier channels after LayerNorm (the reason INT8 hurts them and
    # smoothing helps); random weights have none, so put two in.
    with torch.no_grad():
        for layer in encoder.encoder.layer:
            for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
                norm.weight[[3, 17]] *= 30.0

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    path = tmp_path_factory.mktemp("bert") / "bert.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.randint(1, 300, (1, 12))
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    torch.onnx.export(Pooled().eval(), args, str(path), dynamo=False, opset_version=17, input_names=names,
                      output_names=["embedding_out"],
                      dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "embedding_out": {0: "batch"}})
    return path


def token_samples(n: int, seed: int, lengths: tuple[int, ...] = (2, 3, 5, 8, 13, 20)) -> list[dict[str, np.ndarray]]:
    """Token feeds of several lengths (short ones included), each sample alone like a tokenised sentence."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = lengths[i % len(lengths)]
        ids = rng.integers(1, 300, (1, length)).astype(np.int64)
        out.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return out


@pytest.fixture(scope="session")
def bert_calib() -> object:
    from edgeship.core.data import Dataset

    return Dataset("bert-calib", token_samples(36, seed=3))


@pytest.fixture(scope="session")
def bert_test() -> object:
    from edgeship.core.data import Dataset

    return Dataset("bert-test", token_samples(30, seed=4))


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo:minilm exported once per session (about a minute)."""
    from edgeship.export.exporter import export

    path = tmp_path_factory.mktemp("minilm") / "minilm.onnx"
    export("zoo:minilm", path)
    return path
