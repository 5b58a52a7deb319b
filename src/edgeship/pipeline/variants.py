"""Variants the optimize pipeline can build, registered by name, each built by its config's type.

A variant is a name, a precision and a config (or a function of the pipeline's context that makes
one: a student sized to the model); it turns the exported FP32 ONNX model, or the PyTorch source,
into another model. How a config is built is looked up by its type, the torchao way
(``builder = VARIANT_BUILDERS.get(type(config))``): quantization configs are quantized, compression
configs run their step. ``fp32`` (no config) is the export itself. The recipe's ``variant_options``
for a variant are applied to its config (``Config.replace``: coerced and validated).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.registry import Registry, TypeRegistry

# The modules that register variants and builders (they import the compress configs).
VARIANT_MODULES = ("edgeship.pipeline.quantize_variants", "edgeship.pipeline.compress_variants")


@dataclasses.dataclass
class VariantContext:
    fp32: Model | None  # the exported FP32 ONNX model; None for a build that trains (it may run before the export)
    source: Any  # the TorchSource, or None for an ONNX source
    out: Path  # where this variant's file must go
    calib: Callable[[], Any]  # loads the calibration Dataset on demand
    eval: Callable[[], Any]  # loads the held-out Dataset on demand
    golden: Path  # held-out inputs + FP32 reference outputs
    gates: tuple[str, ...]  # the task gate lossy variants must pass
    task: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the recipe's overrides for this variant


ConfigFor = Config | Callable[[VariantContext], Config] | None
BuildFn = Callable[[VariantContext, Config], Model]
VARIANT_BUILDERS: TypeRegistry[BuildFn] = TypeRegistry("variant builder", modules=VARIANT_MODULES)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    config: ConfigFor = None  # a config, a function of the context making one, or None (the FP32 export)
    description: str = ""
    timed: bool = False  # its build measures latency (a search by speed): optimize runs it alone
    trains: bool = False  # its build trains (fine-tunes, distils): among the longest jobs, so scheduled first

    @property
    def calibrates(self) -> bool:
        """Whether building it needs calibration data: a quantizer that calibrates (int8-static, mixed)
        or a variant whose config is made from the run (pruning, distillation and QAT train on it)."""
        if self.config is None:
            return False
        if not isinstance(self.config, Config):
            return True
        return bool(getattr(self.config, "needs_calibration", True))

    def config_for(self, ctx: VariantContext) -> Config | None:
        """The config this variant builds in ``ctx``, with the recipe's options for it applied."""
        config = self.config(ctx) if callable(self.config) else self.config
        return config.replace(**ctx.options) if config is not None and ctx.options else config

    def build(self, ctx: VariantContext) -> Model:
        config = self.config_for(ctx)
        if config is None:
            return ctx.fp32
        return VARIANT_BUILDERS.get(type(config))(ctx, config)


VARIANTS: Registry[Variant] = Registry("variant", modules=VARIANT_MODULES)


def register_variant(name: str, precision: str, config: ConfigFor, description: str = "",
                     timed: bool = False, trains: bool = False) -> Variant:
    return VARIANTS.add(name, Variant(name, precision, config, description, timed, trains))


def register_builder(config_type: type[Config]) -> Callable[[BuildFn], BuildFn]:
    """Decorator: how variants whose config is a ``config_type`` (or a subclass) are built."""
    return VARIANT_BUILDERS.register(config_type)


def get_variant(name: str) -> Variant:
    return VARIANTS.get(name)


register_variant("fp32", "fp32", None, "the exported model, unchanged")
