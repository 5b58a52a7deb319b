"""Text as a model's token inputs: what ``data:sentences``, ``data:docstrings`` and compression's
``--text`` files share.

Each sentence is tokenised alone, at its natural length (or the model's fixed length): padding would
hide exactly the short-input errors the gates are meant to catch. The tokenizer is the model
source's own when the caller has one (``load_data(..., tokenizer=source.extra["tokenizer"])``),
else the MiniLM tokenizer (BERT uncased), which is what an ONNX file alone can be given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset, Feeds
from edgeship.core.errors import BadInput
from edgeship.zoo.data import Shapes

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MINILM_TOKENIZER = "all-MiniLM-L6-v2 (BERT uncased)"
CHUNK = 1024  # sentences a fast tokenizer reads at once (it works through a list in parallel)

Tokenizer = Callable[..., Any]


def default_tokenizer(tokenizer: Tokenizer | None) -> tuple[Tokenizer, str]:
    """The tokenizer to use and how to name it: the one given, else the MiniLM tokenizer."""
    if tokenizer is not None:
        return tokenizer, str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    from edgeship.zoo.minilm import tokenizer as minilm_tokenizer

    return minilm_tokenizer(), MINILM_TOKENIZER


def token_inputs(what: str, io: IOSpec, shapes: Shapes) -> tuple[list[TensorSpec], int | None]:
    """The model's token inputs and its fixed sequence length (None when the length is free)."""
    others = [n for n in io.input_names if n not in TOKEN_INPUTS]
    if others or "input_ids" not in io.input_names:
        raise BadInput(f"{what} gives BERT token inputs ({', '.join(TOKEN_INPUTS)}); the model's inputs are "
                       f"{', '.join(io.input_names)}; use data matching the model (data:images, data:digits-test, "
                       "an .npz)")
    specs = list(io.inputs)
    seq: int | None = None
    for spec in specs:
        shape = tuple(shapes.get(spec.name, spec.shape))
        if np.dtype(spec.dtype).kind not in "iu":
            raise BadInput(f"{what} gives integer token ids; the model's input {spec.name!r} is {spec.dtype}")
        if len(shape) != 2:
            raise BadInput(f"{what} gives [batch, sequence] token arrays; the model's input {spec.name!r} "
                           f"has {len(shape)} dims {list(shape)}")
        if isinstance(shape[1], int):
            if seq is not None and seq != shape[1]:
                raise BadInput(f"the model's token inputs have different fixed lengths ({seq} and {shape[1]}); "
                               "fix them with --shape NAME:1,SEQ")
            seq = shape[1]
    return specs, seq


def tokenize_batch(tokenizer: Tokenizer, texts: list[str], specs: list[TensorSpec], length: int | None,
                   max_length: int) -> Feeds:
    """One feed of ``len(texts)`` rows, padded to ``length`` or, if None, to the longest."""
    enc = tokenizer(texts, padding="max_length" if length else "longest", truncation=True,
                    max_length=length or max_length, return_tensors="np")
    return _feeds(enc, specs, None)


def tokenize_each(tokenizer: Tokenizer, texts: list[str], specs: list[TensorSpec], length: int | None = None,
                  max_length: int = 128) -> list[Feeds]:
    """One sample per sentence, each tokenised alone (unpadded, or padded to the fixed ``length``).

    A fast Hugging Face tokenizer reads the sentences in chunks of ``CHUNK`` (same ids as one at a
    time); any other callable ``tokenizer(text, return_tensors="np", truncation=True, max_length=N)``
    gets one sentence per call."""
    padding = {"padding": "max_length"} if length else {}
    limit = length or max_length
    samples: list[Feeds] = []
    if getattr(tokenizer, "is_fast", False):
        for start in range(0, len(texts), CHUNK):
            enc = tokenizer(texts[start:start + CHUNK], truncation=True, max_length=limit, **padding)
            samples.extend(_feeds(enc, specs, i) for i in range(len(enc["input_ids"])))
    else:
        for text in texts:
            samples.append(_feeds(tokenizer(text, return_tensors="np", truncation=True, max_length=limit, **padding),
                                  specs, None))
    return samples


def _feeds(enc: Any, specs: list[TensorSpec], row: int | None) -> Feeds:
    missing = [s.name for s in specs if s.name not in enc]
    if missing:
        raise BadInput(f"the tokenizer does not produce input(s) {', '.join(missing)} of the model; give the data as "
                       "an .npz of its inputs instead")
    out = {}
    for s in specs:
        value = np.asarray(enc[s.name] if row is None else enc[s.name][row])
        out[s.name] = np.ascontiguousarray(value if row is None else value[None], dtype=np.dtype(s.dtype))
    return out


def text_dataset(name: str, texts: list[str], io: IOSpec, tokenizer: Tokenizer | None = None,
                 shapes: Shapes | None = None, max_length: int = 128, info: dict[str, Any] | None = None,
                 what: str | None = None, fixed_length: bool = True) -> Dataset:
    """Sentences as a Dataset fitted to the model's token inputs, each tokenised alone; ``what`` names
    the text in errors (default: ``name``). ``fixed_length=False`` keeps every sentence at its natural
    length even where the IO spec fixes one (training a PyTorch module, which takes any length)."""
    specs, seq = token_inputs(what or name, io, shapes or {})
    seq = seq if fixed_length else None
    tok, tok_name = default_tokenizer(tokenizer)
    limit = getattr(tok, "model_max_length", None)
    if isinstance(limit, int) and 2 <= limit < max_length:
        max_length = limit  # the tokenizer knows the model takes no more
    samples = tokenize_each(tok, texts, specs, seq, max_length)

    def fixed_batch(batch: int, seq_len: int | None = None) -> Feeds:
        if batch < 1 or (seq_len is not None and seq_len < 2):
            raise BadInput(f"batch {batch} / sequence {seq_len}: give a batch of at least 1 and a sequence of "
                           "at least 2 tokens ([CLS] and [SEP])")
        rows = [texts[i % len(texts)] for i in range(batch)]
        return tokenize_batch(tok, rows, specs, seq_len or seq, max_length)

    return Dataset(name, samples, fixed_batch=fixed_batch, info={**(info or {}), "tokenizer": tok_name})
