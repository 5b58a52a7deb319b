"""``PruneConfig``: what to remove (a ratio of channels / heads / neurons, or of weights), how to rank
it, what to keep, and how to fine-tune afterwards (``train``, none by default)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from edgeship.compress.train_settings import PruneTraining, TrainedConfig
from edgeship.core.config import described
from edgeship.core.errors import BadInput

Importance = Literal["magnitude", "taylor", "bn-scale"]
Mode = Literal["structured", "unstructured"]


@dataclasses.dataclass(frozen=True)
class PruneConfig(TrainedConfig):
    kind: ClassVar[str] = "prune"
    # edgeship <= 0.x wrote the fine-tune epochs flat as finetune_epochs
    FLAT_KEYS: ClassVar[dict[str, str]] = {**TrainedConfig.FLAT_KEYS, "finetune_epochs": "epochs"}

    ratio: float = described(0.5, "fraction removed, strictly between 0 and 1: channels / heads / neurons "
                             "(structured) or weights (unstructured)", metavar="R")
    importance: Importance = described("magnitude", "how channels are ranked (taylor needs labelled data; "
                                       "bn-scale needs BatchNorm)")
    mode: Mode = described("structured", "structured: remove whole channels / heads / neurons (a smaller dense "
                           "model); unstructured: zero the smallest weights globally (same shapes)")
    heads: bool = described(True, "structured attention: remove whole heads (off: shrink every head's width)")
    keep: tuple[str, ...] = described((), "module names never pruned (their outputs keep their size), "
                                      "e.g. features.0", metavar="LAYER")
    round_to: int | None = described(None, "structured: keep channel counts multiples of N (e.g. 8: widths the "
                                     "runtime's SIMD kernels like)", metavar="N")
    train: PruneTraining = dataclasses.field(default_factory=PruneTraining)

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.ratio < 1.0:
            raise BadInput(f"prune ratio {self.ratio} is out of range; give a fraction strictly between 0 and 1, "
                           "e.g. --ratio 0.5 removes half")
        if self.mode == "unstructured" and self.importance != "magnitude":
            raise BadInput(f"unstructured pruning ranks single weights by magnitude; drop --importance "
                           f"{self.importance} or use --structured")
        if self.round_to is not None and (self.round_to < 1 or self.mode != "structured"):
            raise BadInput(f"round_to {self.round_to}: give a positive multiple for structured pruning, e.g. 8")
