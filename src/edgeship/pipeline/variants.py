"""Variants the optimize pipeline can build, registered by name.

A variant turns the exported FP32 ONNX model into another ONNX model (FP16, INT8, ...). Quantization
methods register theirs beside their code; ``fp32`` is the export itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.registry import Registry


@dataclasses.dataclass
class VariantContext:
    fp32: Model  # the exported FP32 ONNX model
    source: Any  # the TorchSource, or None for an ONNX source
    out: Path  # where this variant's file must go
    calib: Callable[[], Any]  # loads the calibration Dataset on demand
    eval: Callable[[], Any]  # loads the held-out Dataset on demand
    golden: Path  # held-out inputs + FP32 reference outputs
    gates: tuple[str, ...]  # the task gate lossy variants must pass
    task: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the recipe's overrides for this variant


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    build: Callable[[VariantContext], Model]
    description: str = ""


VARIANTS: Registry[Variant] = Registry("variant", modules=["edgeship.compress.quantize.variants",
                                                            "edgeship.compress.variants"])


BuildFn = Callable[[VariantContext], Model]


def register_variant(name: str, precision: str, description: str = "") -> Callable[[BuildFn], BuildFn]:
    def deco(fn: BuildFn) -> BuildFn:
        VARIANTS.add(name, Variant(name, precision, fn, description))
        return fn

    return deco


def get_variant(name: str) -> Variant:
    return VARIANTS.get(name)


@register_variant("fp32", "fp32", "the exported model, unchanged")
def _fp32(ctx: VariantContext) -> Model:
    return ctx.fp32
