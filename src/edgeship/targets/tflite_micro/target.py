"""TFLite Micro: the INT8 .tflite run by the TFLite Micro interpreter (PyPI ``tflite-micro``), which
reports the tensor arena the model needs, so a user learns whether it fits a microcontroller's RAM.
Placement: the operators in the file against the versioned table of TFLite Micro's kernels."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.base import Target, TargetConfig, register_target
from edgeship.targets.placement import PlacementReport, op_table
from edgeship.targets.tflite.target import op_table_report

MAX_ARENA = 64 * 1024 * 1024  # the arena we probe with; a model needing more is not a microcontroller model


@dataclasses.dataclass(frozen=True)
class TfliteMicroTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-tflite-micro"
    precisions: ClassVar[tuple[str, ...]] = ("int8",)  # it runs int8 models only
    precision: str = "int8"
    int8_io: bool = True  # microcontroller firmware feeds int8 tensors
    per_channel: bool = True
    calib_samples: int = 100
    ram_bytes: int | None = None  # the device's RAM budget for the arena: convert fails when it does not fit

    def validate(self) -> None:
        super().validate()
        if self.ram_bytes is not None and self.ram_bytes <= 0:
            raise BadInput(f"tflite-micro ram_bytes must be positive, got {self.ram_bytes}")


class TfliteMicroTarget(Target):
    def placement(self, model: Model, **_: Any) -> PlacementReport:
        kernels = op_table("tflite_micro")
        return op_table_report(self.name, model, lambda op: ("TFLite Micro", op in kernels))


register_target(TfliteMicroTarget(
    "tflite-micro", "edgeship.targets.tflite_micro.runner:MicroRunner",
    "edgeship.targets.tflite_micro.converter:convert", TfliteMicroTargetConfig, formats=("onnx", "tflite"),
    output_format="tflite", extra="micro", modules=("tflite_micro", "onnx2tf", "ai_edge_litert"),
    runs_format="",  # .tflite files run on LiteRT unless tflite-micro is asked for
    note="reports the tensor arena (RAM) the model needs"))
