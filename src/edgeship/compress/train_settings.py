"""How to train: the one training-settings config that prune (fine-tune), distill and QAT nest as
``train``, with each method's own defaults.

``TrainSettings`` declares every training field once (with its description, which the CLI uses as
the flag's help); ``PruneTraining``, ``DistillTraining`` and ``QatTraining`` only change defaults
where the methods differ (fine-tune epochs, the learning rate, distillation's measured schedule).
``TrainedConfig`` is the base of the method configs: it checks that ``train`` carries the method's
own defaults and reads the flat layout of earlier versions (``lr: 1e-4`` beside ``ratio``) into
``train``.

This module is light (no numpy, no torch): the CLI imports it to build its flags.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar, Literal

from edgeship.core.config import Config, described
from edgeship.core.errors import BadInput

# Learning-rate shapes after the warm-up; edgeship.compress.train.SCHEDULES holds their formulas.
Schedule = Literal["constant", "linear", "cosine"]


@dataclasses.dataclass(frozen=True)
class TrainSettings(Config):
    """Training settings shared by every method that trains (used as they are by ``train.fit``)."""

    # Fewer epochs than this are refused (fine-tuning after pruning may be skipped: 0).
    min_epochs: ClassVar[int] = 1

    epochs: int = described(1, "training epochs over the data", metavar="N")
    lr: float = described(1e-3, "peak learning rate", metavar="LR")
    batch_size: int = described(32, "rows per step", metavar="N")
    seed: int = described(0, "seed for initialisation and shuffling", metavar="N")
    max_steps: int | None = described(None, "stop after N steps (quick runs); default: every epoch", metavar="N")
    checkpoint_every: int = described(50, "steps between checkpoints (one is also written after every epoch)",
                                      metavar="N")
    weight_decay: float = described(0.0, "AdamW weight decay", metavar="W")
    temperature: float = described(4.0, "softmax temperature of the teacher's soft targets", metavar="T")
    alpha: float | None = described(None, "weight of the teacher term; 1-A weights hard labels "
                                    "(default: 0.5 with labelled classifier data, else 1)", metavar="A")
    grad_clip: float | None = described(1.0, "clip the gradient norm to this", metavar="G")
    threads: int | None = described(None, "torch threads while training (default: 1 for small models, else all)",
                                    metavar="N")
    schedule: Schedule = described("constant", "learning rate after the warm-up: constant, or decayed to 0 "
                                   "linearly or along a cosine")
    warmup: float = described(0.0, "fraction of the steps over which the rate ramps up from 0", metavar="F")
    bucket: bool = described(False, "group rows of similar length into batches (less padding for text)")

    def validate(self) -> None:
        if self.epochs < self.min_epochs:
            raise BadInput(f"epochs {self.epochs} must be at least {self.min_epochs}")
        if self.lr <= 0 or self.batch_size < 1:
            raise BadInput("lr must be positive and batch_size at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise BadInput(f"max_steps {self.max_steps} must be at least 1")
        if self.checkpoint_every < 1:
            raise BadInput(f"checkpoint_every {self.checkpoint_every} must be at least 1")
        if self.weight_decay < 0:
            raise BadInput(f"weight_decay {self.weight_decay} must be 0 or more")
        if self.temperature <= 0:
            raise BadInput(f"temperature {self.temperature} must be positive (typical: 2 to 8)")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise BadInput(f"alpha {self.alpha} must be between 0 and 1 (1: teacher only)")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise BadInput(f"grad_clip {self.grad_clip} must be positive (or none)")
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"threads {self.threads} must be at least 1")
        if not 0.0 <= self.warmup < 1.0:
            raise BadInput(f"warmup {self.warmup} is the fraction of steps spent warming up; give a fraction from 0 "
                           "up to (not including) 1, e.g. 0.06")


def _doc(name: str) -> dict[str, Any]:
    """The description of TrainSettings' field ``name``, for a subclass that only changes its default."""
    return dict(TrainSettings.__dataclass_fields__[name].metadata)


@dataclasses.dataclass(frozen=True)
class PruneTraining(TrainSettings):
    """Fine-tuning after pruning: none unless asked (epochs 0); text batches group similar lengths."""

    min_epochs: ClassVar[int] = 0

    epochs: int = described(0, "fine-tune epochs on the data after pruning, learning from the unpruned model "
                            "(and labels); 0: no fine-tune", metavar="N")
    bucket: bool = described(True, **_doc("bucket"))


@dataclasses.dataclass(frozen=True)
class DistillTraining(TrainSettings):
    """Distillation's measured recipe: 3 epochs, linear warm-up over 6 % of the steps, then a linear
    decay (MiniLM layers=3, 200 steps: lr 1e-3 → held-out cosine 0.898, 3e-4 → 0.887)."""

    epochs: int = described(3, **_doc("epochs"))
    schedule: Schedule = described("linear", **_doc("schedule"))
    warmup: float = described(0.06, **_doc("warmup"))
    bucket: bool = described(True, **_doc("bucket"))


@dataclasses.dataclass(frozen=True)
class QatTraining(TrainSettings):
    """Quantization-aware fine-tuning starts from a trained model: a low rate, 2 epochs."""

    epochs: int = described(2, **_doc("epochs"))
    lr: float = described(1e-4, **_doc("lr"))


TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainSettings))


class TrainedConfig(Config):
    """Base of the configs of methods that train: their settings sit in a ``train`` field annotated
    with the method's TrainSettings subclass.

    Earlier versions kept the training fields flat beside the method's own (``{"kind": "prune",
    "lr": 1e-4}``); ``from_dict`` moves them into ``train`` (``FLAT_KEYS``: old key → field of
    ``train``; prune's ``finetune_epochs`` is ``train.epochs``)."""

    FLAT_KEYS: ClassVar[dict[str, str]] = {name: name for name in TRAIN_FIELDS}

    @classmethod
    def training_type(cls) -> type[TrainSettings]:
        return typing.get_type_hints(cls)["train"]

    @classmethod
    def upgrade_dict(cls, data: dict[str, Any]) -> dict[str, Any]:
        own = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        moved = {new: data.pop(old) for old, new in cls.FLAT_KEYS.items() if old in data and old not in own}
        if moved:
            train = data.get("train") or {}
            if isinstance(train, TrainSettings):
                train = train.to_dict()
            data["train"] = {**train, **moved}
        return data

    def validate(self) -> None:
        want = self.training_type()
        train = getattr(self, "train", None)
        if not isinstance(train, want):
            raise BadInput(f"{type(self).__name__}.train is a {type(train).__name__}; give {want.__name__}(...), "
                           f"which carries {type(self).__name__}'s training defaults")
