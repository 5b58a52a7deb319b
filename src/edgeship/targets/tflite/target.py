"""TFLite (LiteRT): from ONNX through onnx2tf, or from PyTorch through litert-torch; fp32, fp16,
dynamic-range INT8 and full INT8 with calibration (int8 I/O as an option); runs with ai-edge-litert.

onnx2tf turns channels-first tensors into channels-last (NCHW → NHWC). The runner takes and returns
arrays in the ONNX layout and transposes at the boundary; the sidecar's ``input_layout`` fact states
the converted file's own layout, which is what a user feeding the .tflite directly must supply.
``keep_nchw=True`` keeps the inputs channels-first in the file itself.

Placement: the operators in the file against the versioned XNNPACK op table (what the delegate
takes; the rest run on LiteRT's builtin kernels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Target, TargetConfig, register_target
from edgeship.targets.placement import OpPlacement, PlacementReport, op_table

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")


@dataclasses.dataclass(frozen=True)
class TfliteTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-tflite"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    int8_io: bool = False  # full INT8: int8 input and output tensors too (what microcontrollers take)
    per_channel: bool = True  # INT8 weight scales per output channel (else per tensor)
    keep_nchw: bool = False  # keep channels-first inputs in the file (onnx2tf -kat)
    calib_samples: int = 100
    shapes: dict[str, list[int]] | None = None  # fix symbolic input dims for the conversion
    dynamic: bool = False  # litert-torch: keep the source's dynamic sequence axes (fails on MiniLM: jax tracing)
    max_dim: int = 512  # litert-torch: upper bound of those axes
    # onnx2tf: the fixed length of a text model's free sequence axis (inputs are padded to it at run
    # time with attention_mask 0, outputs along it cut back), at most the model's own limit (its
    # learned positions, the ``dim_max`` fact of its export)
    sequence: int = 512

    def validate(self) -> None:
        super().validate()
        if self.int8_io and self.precision != "int8":
            raise BadInput("tflite int8_io needs precision int8 (full integer quantization)")
        self.at_least(1, "calib_samples")
        self.at_least(2, "sequence")


def tflite_ops(path: Path) -> list[dict[str, Any]]:
    """The operators of a .tflite file, in order (index and op_name), as LiteRT reads them."""
    interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
    it = interp.Interpreter(model_path=str(path))
    return list(it._get_ops_details())  # the only API that lists a file's operators


def op_table_report(target: str, model: Model, where: Callable[[str], tuple[str, bool]]) -> PlacementReport:
    """A placement report for a .tflite file: ``where(op_name)`` gives (where it runs, supported)."""
    rows = [OpPlacement(f"{d['index']}:{d['op_name']}", d["op_name"], *where(d["op_name"]))
            for d in tflite_ops(model.path)]
    return PlacementReport(target, str(model.path), rows, "op table")


class TfliteTarget(Target):
    def why_cannot_convert(self, model: Model, precision: str) -> str:
        from edgeship.targets.tflite.converter import why_not_int8

        return why_not_int8(model.io) if precision == "int8" and model.format == "onnx" else ""

    def placement(self, model: Model, **_: Any) -> PlacementReport:
        xnnpack = op_table("xnnpack")
        return op_table_report(self.name, model,
                               lambda op: ("XNNPACK" if op in xnnpack else "CPU (builtin kernels)", True))


register_target(TfliteTarget(
    "tflite", "edgeship.targets.tflite.runner:TfliteRunner", "edgeship.targets.tflite.converter:convert",
    TfliteTargetConfig, formats=("onnx", "torch"), output_format="tflite", extra="tflite",
    modules=("onnx2tf", "tensorflow", "ai_edge_litert"), report_name="tflite-cpu",
    note="ONNX via onnx2tf; a PyTorch source via litert-torch (fp32)"))
