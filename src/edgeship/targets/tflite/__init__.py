"""TFLite (LiteRT): from ONNX through onnx2tf, or from PyTorch through litert-torch; fp32, fp16,
dynamic-range INT8 and full INT8 with calibration (int8 I/O as an option); runs with ai-edge-litert.

onnx2tf turns channels-first tensors into channels-last (NCHW → NHWC). The runner takes and returns
arrays in the ONNX layout and transposes at the boundary; the sidecar's ``input_layout`` fact states
the converted file's own layout, which is what a user feeding the .tflite directly must supply.
``keep_nchw=True`` keeps the inputs channels-first in the file itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.targets.base import Runner, Target, register_target

# precision -> the onnx2tf output file suffix it produces (the float-I/O file for int8 unless int8_io)
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
FRONTENDS = ("onnx2tf", "litert-torch")


@dataclasses.dataclass(frozen=True)
class TfliteTargetConfig(Config):
    kind: ClassVar[str] = "target-tflite"
    precision: str = "fp32"
    int8_io: bool = False  # full INT8: int8 input and output tensors too (what microcontrollers take)
    per_channel: bool = True  # INT8 weight scales per output channel (else per tensor)
    keep_nchw: bool = False  # keep channels-first inputs in the file (onnx2tf -kat)
    calib_samples: int = 100
    shapes: dict[str, list[int]] | None = None  # fix symbolic input dims for the conversion
    dynamic: bool = False  # litert-torch: keep the source's dynamic sequence axes (fails on MiniLM: jax tracing)
    max_dim: int = 512  # litert-torch: upper bound of those axes

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"tflite precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.int8_io and self.precision != "int8":
            raise BadInput("tflite int8_io needs precision int8 (full integer quantization)")
        if self.calib_samples < 1:
            raise BadInput(f"tflite calib_samples must be >= 1, got {self.calib_samples}")


@register_target
class TfliteTarget(Target):
    name: ClassVar[str] = "tflite"
    config_class: ClassVar[type[Config]] = TfliteTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("onnx", "torch")
    output_format: ClassVar[str] = "tflite"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str] = "tflite"
    modules: ClassVar[tuple[str, ...]] = ("onnx2tf", "tensorflow", "ai_edge_litert")
    report_name: ClassVar[str] = "tflite-cpu"
    runs_format: ClassVar[str] = "tflite"
    suffix: ClassVar[str] = ".tflite"
    note: ClassVar[str] = "ONNX via onnx2tf; a PyTorch source via litert-torch (fp32)"

    def convert(self, model: Any, out: Path, precision: str = "fp32", calib: Any = None, **options: Any) -> Model:
        from edgeship.targets.tflite import converter
        from edgeship.targets.util import is_torch_source

        cfg = TfliteTargetConfig(precision=precision, **options)
        if is_torch_source(model):
            return converter.convert_torch(model, Path(out), cfg)
        return converter.convert_onnx(model, Path(out), cfg, calib)

    def runner(self, model: Model, **options: Any) -> Runner:
        from edgeship.targets.tflite.runner import TfliteRunner

        return TfliteRunner(model, **options)
