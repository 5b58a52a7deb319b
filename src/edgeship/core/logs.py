"""Keeping third-party noise out of our output."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

# transformers imports torchao, which logs CUDA-only notes on CPU machines: noise, not news.
TORCHAO_NOISE = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given loggers to ERROR for the duration of the block."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
