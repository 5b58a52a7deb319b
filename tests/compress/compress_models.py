"""Real models for the compression tests: the zoo's digits CNN (trained once, cached) and a tiny,
randomly initialised BERT with masked mean pooling (built in code, no download)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np


def digits_source() -> Any:
    from edgeship.zoo.base import load_zoo

    return load_zoo("digits-cnn")


def tiny_bert_source(layers: int = 4, heads: int = 4, hidden: int = 32, seed: int = 0, init: float = 0.02) -> Any:
    """A randomly initialised BERT (no download) with masked mean pooling + L2 norm, like MiniLM."""
    os.environ.setdefault("USE_TF", "0")
    import torch
    from torch import nn
    from transformers import BertConfig, BertModel

    from edgeship.sources.torch_source import TorchSource

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=64, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=hidden * 4, max_position_embeddings=64, attn_implementation="eager",
                     initializer_range=init, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    bert = BertModel(cfg, add_pooling_layer=False)

    class Pooled(nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, dim=-1)

    ids = torch.tensor([[2, 5, 9, 11, 7, 3]])
    return TorchSource(name="test:tiny-bert", module=Pooled(bert).eval(),
                       example_inputs={"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                       output_names=["sentence_embedding"],
                       dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                       task="embedding")


def token_dataset(n: int = 24, seed: int = 0) -> Any:
    """Random token sequences of different lengths (3 to 11), each sample alone like tokenised text."""
    from edgeship.core.data import Dataset

    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        length = int(rng.integers(3, 12))
        ids = rng.integers(4, 64, size=(1, length)).astype(np.int64)
        samples.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    return Dataset("tokens", samples)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Small models train several times faster on one thread on this busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
