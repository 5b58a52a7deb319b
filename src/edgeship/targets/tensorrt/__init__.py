"""TensorRT: an engine built from ONNX through the tensorrt Python API (FP16, INT8 with an entropy
calibrator fed from our data, a timing cache, optimization profiles for dynamic dims) and a runner.

TensorRT needs an NVIDIA GPU and its own wheels (downloaded from NVIDIA's index at install time).
Where either is missing, convert, check and bench say exactly that (NotRunnableHere); the parts that
need no GPU (calibration batches, builder-flag mapping, profile shapes) are plain Python and tested.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.core.registry import is_installed
from edgeship.targets.base import Availability, Runner, Target, register_target

NOT_INSTALLED = "TensorRT is not installed"
NO_GPU = "no NVIDIA GPU"
PRECISIONS = ("fp32", "fp16", "int8")


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


@dataclasses.dataclass(frozen=True)
class TensorrtTargetConfig(Config):
    kind: ClassVar[str] = "target-tensorrt"
    precision: str = "fp32"
    workspace_mb: int = 1024
    fp16_fallback: bool = True  # int8: layers without INT8 kernels may run in FP16 instead of FP32
    timing_cache: str | None = None  # file to load and save kernel timings (faster rebuilds)
    calib_samples: int = 256
    calib_batch: int = 8
    max_batch: int = 32  # upper bound of a dynamic batch axis in the optimization profile
    profile: dict[str, dict[str, list[int]]] | None = None  # input -> {"min","opt","max"} shapes

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"tensorrt precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        for field in ("workspace_mb", "calib_samples", "calib_batch", "max_batch"):
            if getattr(self, field) < 1:
                raise BadInput(f"tensorrt {field} must be >= 1, got {getattr(self, field)}")
        for name, p in (self.profile or {}).items():
            if set(p) != {"min", "opt", "max"}:
                raise BadInput(f"tensorrt profile for {name!r} needs exactly min, opt and max shapes")
            lo, mid, hi = p["min"], p["opt"], p["max"]
            if not (len(lo) == len(mid) == len(hi)) or any(not (a <= b <= c) for a, b, c in zip(lo, mid, hi)):
                raise BadInput(f"tensorrt profile for {name!r}: shapes must have one rank and min <= opt <= max")


@register_target
class TensorrtTarget(Target):
    name: ClassVar[str] = "tensorrt"
    config_class: ClassVar[type[Config]] = TensorrtTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    output_format: ClassVar[str] = "engine"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str] = "tensorrt"
    modules: ClassVar[tuple[str, ...]] = ()  # availability() says why, instead of an install hint
    report_name: ClassVar[str] = "tensorrt-gpu"
    runs_format: ClassVar[str] = "engine"
    suffix: ClassVar[str] = ".engine"
    note: ClassVar[str] = "NVIDIA GPU with TensorRT installed from NVIDIA's index"

    def availability(self) -> Availability:
        missing = [why for ok, why in ((is_installed("tensorrt"), NOT_INSTALLED), (has_nvidia_gpu(), NO_GPU)) if not ok]
        if missing:
            return Availability(is_installed("tensorrt"), False, " / ".join(missing))
        return Availability(True, True, "")

    def _refuse_unless_runnable(self) -> None:
        avail = self.availability()
        if not avail.runs_here:
            raise NotRunnableHere(avail.why)

    def convert(self, model: Model, out: Path, precision: str = "fp32", calib: Any = None, **options: Any) -> Model:
        cfg = TensorrtTargetConfig(precision=precision, **options)  # bad options fail first, GPU or not
        self._refuse_unless_runnable()
        from edgeship.targets.tensorrt.converter import convert

        return convert(model, Path(out), cfg, calib)

    def runner(self, model: Model, **options: Any) -> Runner:
        self._refuse_unless_runnable()
        from edgeship.targets.tensorrt.runner import TensorrtRunner

        return TensorrtRunner(model, **options)
