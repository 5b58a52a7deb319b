"""Unstructured pruning: the smallest weights of Conv/Linear layers are zeroed (global magnitude), the
shapes stay; masks keep them zero during a fine-tune. A dense runtime runs the result no faster.
"""

from __future__ import annotations

from typing import Any

from edgeship.compress.prune.config import PruneConfig
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource


def unstructured(module: Any, src: TorchSource, config: PruneConfig, ds: Dataset | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Global magnitude pruning of Conv/Linear weights with masks (kept during the fine-tune)."""
    import torch
    from torch.nn.utils import prune as tprune

    by_name = dict(module.named_modules())
    unknown = [k for k in config.keep if k not in by_name]
    if unknown:
        raise BadInput(f"keep: no layer named {', '.join(unknown)}; see the model's module names")
    targets, skipped = [], []
    for name, m in module.named_modules():
        if not isinstance(m, torch.nn.modules.conv._ConvNd | torch.nn.Linear):
            continue
        if name in config.keep:
            skipped.append({"layer": name, "type": type(m).__name__, "why": "kept on request (keep)"})
            continue
        targets.append((m, "weight"))
    if not targets:
        raise BadInput("no Conv or Linear weights left to prune; remove some --keep names")
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=config.ratio)
    return skipped, {"pruned_layers": len(targets)}


def make_permanent(module: Any) -> None:
    """Fold the pruning masks into the weights (after the fine-tune, which keeps the zeros zero)."""
    from torch.nn.utils import prune as tprune

    for m in module.modules():
        if tprune.is_pruned(m) and hasattr(m, "weight_orig"):
            tprune.remove(m, "weight")
