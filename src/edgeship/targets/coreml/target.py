"""Core ML: an ``.mlpackage`` (ML program) built from the PyTorch source with coremltools, in fp32,
fp16, INT8 weights or 4-bit palettized weights. On Linux the package is validated structurally
(it loads, its op list, inputs and outputs); prediction needs macOS, so there the runner refuses
with NotRunnableHere and a check records the numeric comparison as "not run", never as passed."""

from __future__ import annotations

import dataclasses
import sys
from typing import ClassVar

from edgeship.targets.base import Target, TargetConfig, register_target

NOT_MACOS = "Core ML prediction needs macOS"
FRONTENDS = ("trace", "export")


@dataclasses.dataclass(frozen=True)
class CoremlTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-coreml"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8-weights", "palette4")
    frontend: str = "trace"  # torch.jit.trace, or torch.export
    deployment_target: str = "iOS16"  # the oldest OS the package must run on (coremltools ct.target name)
    max_dim: int = 512  # upper bound of dynamic non-batch axes (RangeDim)

    def validate(self) -> None:
        super().validate()
        self.choose("frontend", FRONTENDS)
        self.at_least(2, "max_dim")


class CoremlTarget(Target):
    def why_not_here(self) -> str:
        return "" if sys.platform == "darwin" else NOT_MACOS


register_target(CoremlTarget(
    "coreml", "edgeship.targets.coreml.runner:CoremlRunner", "edgeship.targets.coreml.converter:convert",
    CoremlTargetConfig, formats=("torch",), output_format="mlpackage", extra="coreml",
    modules=("coremltools", "torch"), refuse_unless_runnable=True,
    note="converts from the PyTorch source; validated structurally off macOS"))
