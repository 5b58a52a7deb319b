"""How structured pruning finds attention modules: adapters registered by name, each saying how to
find a kind of attention module's q/k/v layers and head count, and how to fix it after pruning."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from edgeship.core.registry import Registry


@dataclasses.dataclass(frozen=True)
class AttentionAdapter:
    matches: Callable[[Any], bool]
    qkv: Callable[[Any], list[Any]]
    heads: Callable[[Any], int]
    update: Callable[[Any, int], None]  # (module, new head count)


ATTENTION: Registry[AttentionAdapter] = Registry("attention adapter")


def _hf_update(m: Any, heads: int) -> None:
    m.num_attention_heads = heads
    m.attention_head_size = m.query.out_features // heads
    m.all_head_size = m.query.out_features


ATTENTION.add("hf-bert-self-attention", AttentionAdapter(
    matches=lambda m: all(hasattr(m, a) for a in ("query", "key", "value", "num_attention_heads")),
    qkv=lambda m: [m.query, m.key, m.value],
    heads=lambda m: int(m.num_attention_heads),
    update=_hf_update,
))


def attention_modules(module: Any) -> list[tuple[Any, AttentionAdapter]]:
    """Every attention module of ``module`` with the adapter that understands it."""
    found = []
    for m in module.modules():
        for _, adapter in ATTENTION.items():
            if adapter.matches(m):
                found.append((m, adapter))
                break
    return found
