"""TFLite Micro: the INT8 .tflite run by the TFLite Micro interpreter (PyPI ``tflite-micro``), which
reports the tensor arena the model needs, so a user learns whether it fits a microcontroller's RAM."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.targets.base import Runner, Target, register_target

MAX_ARENA = 64 * 1024 * 1024  # the arena we probe with; a model needing more is not a microcontroller model


@dataclasses.dataclass(frozen=True)
class TfliteMicroTargetConfig(Config):
    kind: ClassVar[str] = "target-tflite-micro"
    precision: str = "int8"
    int8_io: bool = True  # microcontroller firmware feeds int8 tensors
    per_channel: bool = True
    calib_samples: int = 100
    ram_bytes: int | None = None  # the device's RAM budget for the arena: convert fails when it does not fit

    def validate(self) -> None:
        if self.precision != "int8":
            raise BadInput(f"tflite-micro precision {self.precision!r}; it runs int8 models only")
        if self.ram_bytes is not None and self.ram_bytes <= 0:
            raise BadInput(f"tflite-micro ram_bytes must be positive, got {self.ram_bytes}")


@register_target
class TfliteMicroTarget(Target):
    name: ClassVar[str] = "tflite-micro"
    config_class: ClassVar[type[Config]] = TfliteMicroTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("onnx", "tflite")
    output_format: ClassVar[str] = "tflite"
    precisions: ClassVar[tuple[str, ...]] = ("int8",)
    extra: ClassVar[str] = "micro"
    modules: ClassVar[tuple[str, ...]] = ("tflite_micro", "onnx2tf", "ai_edge_litert")
    report_name: ClassVar[str] = "tflite-micro"
    runs_format: ClassVar[str] = ""  # .tflite files run on LiteRT unless tflite-micro is asked for
    suffix: ClassVar[str] = ".tflite"
    note: ClassVar[str] = "reports the tensor arena (RAM) the model needs"

    def convert(self, model: Model, out: Path, precision: str = "int8", calib: Any = None, **options: Any) -> Model:
        from edgeship.targets.tflite_micro.converter import convert

        return convert(model, Path(out), TfliteMicroTargetConfig(precision=precision, **options), calib)

    def runner(self, model: Model, **options: Any) -> Runner:
        from edgeship.targets.tflite_micro.runner import MicroRunner

        return MicroRunner(model, **options)
