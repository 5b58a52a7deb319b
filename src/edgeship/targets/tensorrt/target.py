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
from typing import TYPE_CHECKING, Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import is_installed
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.base import Availability, Target, TargetConfig, register_target

if TYPE_CHECKING:
    from edgeship.core.data import Dataset

NOT_INSTALLED = "TensorRT is not installed"
NO_GPU = "no NVIDIA GPU"


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


@dataclasses.dataclass(frozen=True)
class TensorrtTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-tensorrt"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")
    workspace_mb: int = 1024
    fp16_fallback: bool = True  # int8: layers without INT8 kernels may run in FP16 instead of FP32
    timing_cache: str | None = None  # file to load and save kernel timings (faster rebuilds)
    calib_samples: int = 256
    calib_batch: int = 8
    max_batch: int = 32  # upper bound of a dynamic batch axis in the optimization profile
    profile: dict[str, dict[str, list[int]]] | None = None  # input -> {"min","opt","max"} shapes

    def validate(self) -> None:
        super().validate()
        self.at_least(1, "workspace_mb", "calib_samples", "calib_batch", "max_batch")
        for name, p in (self.profile or {}).items():
            if set(p) != {"min", "opt", "max"}:
                raise BadInput(f"tensorrt profile for {name!r} needs exactly min, opt and max shapes")
            lo, mid, hi = p["min"], p["opt"], p["max"]
            if not (len(lo) == len(mid) == len(hi)) or any(not (a <= b <= c) for a, b, c in zip(lo, mid, hi)):
                raise BadInput(f"tensorrt profile for {name!r}: shapes must have one rank and min <= opt <= max")


class TensorrtTarget(Target):
    def availability(self) -> Availability:
        """Not an install hint: TensorRT comes from NVIDIA's index, and it needs the GPU as well."""
        installed = is_installed("tensorrt")
        missing = [why for ok, why in ((installed, NOT_INSTALLED), (has_nvidia_gpu(), NO_GPU)) if not ok]
        return Availability(installed, not missing, " / ".join(missing))

    def convert(self, model: Model | TorchSource, out: str | Path, precision: str | None = None,
                calib: Dataset | str | None = None, **options: Any) -> Model:
        self.config(precision, **options)  # bad options fail first, GPU or not
        self.require_runnable()  # building an engine needs the GPU it is built for
        return super().convert(model, out, precision, calib, **options)


register_target(TensorrtTarget(
    "tensorrt", "edgeship.targets.tensorrt.runner:TensorrtRunner", "edgeship.targets.tensorrt.converter:convert",
    TensorrtTargetConfig, output_format="engine", extra="tensorrt", report_name="tensorrt-gpu",
    refuse_unless_runnable=True, note="NVIDIA GPU with TensorRT installed from NVIDIA's index"))
