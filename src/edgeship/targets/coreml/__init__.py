"""Core ML: an ``.mlpackage`` (ML program) built from the PyTorch source with coremltools, in fp32,
fp16, INT8 weights or 4-bit palettized weights. On Linux the package is validated structurally
(it loads, its op list, inputs and outputs); prediction needs macOS, so there the runner refuses
with NotRunnableHere and a check records the numeric comparison as "not run", never as passed."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.core.registry import is_installed
from edgeship.targets.base import Availability, Runner, Target, register_target

PRECISIONS = ("fp32", "fp16", "int8-weights", "palette4")
NOT_MACOS = "Core ML prediction needs macOS"
FRONTENDS = ("trace", "export")


@dataclasses.dataclass(frozen=True)
class CoremlTargetConfig(Config):
    kind: ClassVar[str] = "target-coreml"
    precision: str = "fp32"
    frontend: str = "trace"  # torch.jit.trace, or torch.export
    deployment_target: str = "iOS16"  # the oldest OS the package must run on (coremltools ct.target name)
    max_dim: int = 512  # upper bound of dynamic non-batch axes (RangeDim)

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"coreml precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.frontend not in FRONTENDS:
            raise BadInput(f"coreml frontend {self.frontend!r}; choose trace or export")
        if self.max_dim < 2:
            raise BadInput(f"coreml max_dim must be >= 2, got {self.max_dim}")


@register_target
class CoremlTarget(Target):
    name: ClassVar[str] = "coreml"
    config_class: ClassVar[type[Config]] = CoremlTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("torch",)
    output_format: ClassVar[str] = "mlpackage"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str] = "coreml"
    modules: ClassVar[tuple[str, ...]] = ("coremltools", "torch")
    report_name: ClassVar[str] = "coreml"
    runs_format: ClassVar[str] = "mlpackage"
    suffix: ClassVar[str] = ".mlpackage"
    note: ClassVar[str] = "converts from the PyTorch source; validated structurally off macOS"

    def availability(self) -> Availability:
        if not is_installed("coremltools"):
            return Availability(False, False, "install edgeship[coreml] (coremltools missing)")
        if sys.platform != "darwin":
            return Availability(True, False, NOT_MACOS)
        return Availability(True, True, "")

    def convert(self, model: Any, out: Path, precision: str = "fp32", calib: Any = None, **options: Any) -> Model:
        from edgeship.targets.coreml.converter import convert
        from edgeship.targets.util import require_torch_source

        source = require_torch_source(model, self.name)
        return convert(source, Path(out), CoremlTargetConfig(precision=precision, **options))

    def runner(self, model: Model, **options: Any) -> Runner:
        avail = self.availability()
        if not avail.runs_here:
            raise NotRunnableHere(avail.why)
        from edgeship.targets.coreml.runner import CoremlRunner

        return CoremlRunner(model, **options)
