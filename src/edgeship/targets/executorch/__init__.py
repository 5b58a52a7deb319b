"""ExecuTorch: a ``.pte`` program lowered from the PyTorch source with the XNNPACK partitioner, fp32
or INT8 (PT2E, XNNPACK quantizer); runs with ``executorch.runtime``; reports which ops XNNPACK took
(delegated) and which run on ExecuTorch's portable kernels."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.targets.base import Runner, Target, register_target


@dataclasses.dataclass(frozen=True)
class ExecuTorchTargetConfig(Config):
    kind: ClassVar[str] = "target-executorch"
    precision: str = "fp32"
    calib_samples: int = 100
    per_channel: bool = True
    dynamic: bool = True  # keep the source's dynamic non-batch axes (sequence length) dynamic
    max_dim: int = 512  # upper bound of each dynamic axis (XNNPACK plans memory for it)

    def validate(self) -> None:
        if self.precision not in ("fp32", "int8"):
            raise BadInput(f"executorch precision {self.precision!r}; choose fp32 or int8")
        if self.calib_samples < 1 or self.max_dim < 2:
            raise BadInput("executorch calib_samples must be >= 1 and max_dim >= 2")


@register_target
class ExecuTorchTarget(Target):
    name: ClassVar[str] = "executorch"
    config_class: ClassVar[type[Config]] = ExecuTorchTargetConfig
    formats: ClassVar[tuple[str, ...]] = ("torch",)
    output_format: ClassVar[str] = "pte"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    extra: ClassVar[str] = "executorch"
    modules: ClassVar[tuple[str, ...]] = ("executorch", "torch")
    report_name: ClassVar[str] = "executorch-xnnpack"
    runs_format: ClassVar[str] = "pte"
    suffix: ClassVar[str] = ".pte"
    note: ClassVar[str] = "converts from the PyTorch source (zoo:NAME, net.py:factory)"

    def convert(self, model: Any, out: Path, precision: str = "fp32", calib: Any = None, **options: Any) -> Model:
        from edgeship.targets.executorch.converter import convert
        from edgeship.targets.util import require_torch_source

        source = require_torch_source(model, self.name)
        return convert(source, Path(out), ExecuTorchTargetConfig(precision=precision, **options), calib)

    def runner(self, model: Model, **options: Any) -> Runner:
        from edgeship.targets.executorch.runner import ExecuTorchRunner

        return ExecuTorchRunner(model, **options)
