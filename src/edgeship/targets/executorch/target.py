"""ExecuTorch: a ``.pte`` program lowered from the PyTorch source with the XNNPACK partitioner, fp32
or INT8 (PT2E, XNNPACK quantizer); runs with ``executorch.runtime``. Placement is the delegation
record made at lowering: which ops XNNPACK took (delegated) and which run on portable kernels."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.base import Target, TargetConfig, register_target
from edgeship.targets.placement import OpPlacement, PlacementReport


@dataclasses.dataclass(frozen=True)
class ExecuTorchTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-executorch"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    calib_samples: int = 100
    per_channel: bool = True
    dynamic: bool = True  # keep the source's dynamic non-batch axes (sequence length) dynamic
    max_dim: int = 512  # upper bound of each dynamic axis (XNNPACK plans memory for it)

    def validate(self) -> None:
        super().validate()
        self.at_least(1, "calib_samples")
        self.at_least(2, "max_dim")


class ExecuTorchTarget(Target):
    def placement(self, model: Model, **_: Any) -> PlacementReport:
        """Per operator: how many of its nodes XNNPACK runs and how many stay on portable kernels."""
        info = model.facts.get("delegation")
        if not info:
            raise BadInput(f"{model.path.name} has no delegation record; convert it with edgeship convert --target "
                           "executorch (the record is made when the program is lowered)")
        rows = []
        for op, counts in info["by_operator"].items():
            if counts["delegated"]:
                rows.append(OpPlacement(op, op, "XNNPACK", True, counts["delegated"]))
            if counts["portable"]:
                rows.append(OpPlacement(op, op, "portable", True, counts["portable"]))
        return PlacementReport(self.name, str(model.path), rows, "delegation")


register_target(ExecuTorchTarget(
    "executorch", "edgeship.targets.executorch.runner:ExecuTorchRunner",
    "edgeship.targets.executorch.converter:convert", ExecuTorchTargetConfig, formats=("torch",),
    output_format="pte", extra="executorch", modules=("executorch", "torch"), report_name="executorch-xnnpack",
    note="converts from the PyTorch source (zoo:NAME, net.py:factory)"))
