"""OpenVINO: ONNX read and compiled for CPU (f32 precision hint for parity; bf16/f16 as explicit
variants) and NNCF post-training INT8 as a second INT8 quantizer. Files are OpenVINO IR (.xml + .bin)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.targets.base import Runner, Target, register_target

# precision -> (weights compressed to fp16 in the IR, CPU INFERENCE_PRECISION_HINT)
PRECISIONS: dict[str, tuple[bool, str]] = {
    "fp32": (False, "f32"),
    "fp16": (True, "f16"),
    "bf16": (False, "bf16"),
    "int8": (False, "f32"),  # NNCF INT8; activations the quantizer left in float run in f32
}
MODEL_TYPES = ("auto", None, "transformer")
PRESETS = ("performance", "mixed")


@dataclasses.dataclass(frozen=True)
class OpenVinoTargetConfig(Config):
    kind: ClassVar[str] = "target-openvino"
    precision: str = "fp32"
    calib_samples: int = 300  # NNCF subset size
    # "transformer" turns on NNCF's transformer scheme; "auto" turns it on for BERT-like ONNX graphs
    model_type: str | None = "auto"
    preset: str = "performance"  # NNCF preset: symmetric ("performance") or asymmetric activations ("mixed")
    # SmoothQuant within the transformer scheme. Measured on MiniLM (calibrated on sentences of their
    # natural lengths, short ones included; 200 held-out sentences): worst-case cosine 0.992 with it,
    # 0.957 without (benchmarks/quantization.py). ENVIRONMENT.md saw the opposite on static 1x32 shapes.
    smooth_quant: bool = True
    fast_bias_correction: bool = True

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"openvino precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.model_type not in MODEL_TYPES:
            raise BadInput(f"openvino model_type {self.model_type!r}; choose auto, transformer or leave it unset")
        if self.preset not in PRESETS:
            raise BadInput(f"openvino preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.calib_samples < 1:
            raise BadInput(f"openvino calib_samples must be >= 1, got {self.calib_samples}")


@register_target
class OpenVinoTarget(Target):
    name: ClassVar[str] = "openvino"
    config_class: ClassVar[type[Config]] = OpenVinoTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("onnx", "openvino")
    output_format: ClassVar[str] = "openvino"
    precisions: ClassVar[tuple[str, ...]] = tuple(PRECISIONS)
    extra: ClassVar[str] = "openvino"
    modules: ClassVar[tuple[str, ...]] = ("openvino", "nncf")
    report_name: ClassVar[str] = "openvino-cpu"
    runs_format: ClassVar[str] = "openvino"
    suffix: ClassVar[str] = ".xml"

    def convert(self, model: Model, out: Path, precision: str = "fp32", calib: Any = None, **options: Any) -> Model:
        from edgeship.targets.openvino.converter import convert

        return convert(model, Path(out), OpenVinoTargetConfig(precision=precision, **options), calib)

    def runner(self, model: Model, **options: Any) -> Runner:
        from edgeship.targets.openvino.runner import OpenVinoRunner

        return OpenVinoRunner(model, **options)
