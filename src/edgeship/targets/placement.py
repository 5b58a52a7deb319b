"""Op placement: which node runs where (execution provider, device, delegate) on a target.

Placement is a capability of a :class:`~edgeship.targets.base.Target`: ``Target.placement(model)``,
implemented in each target's module from the runtime itself where it can tell (ONNX Runtime
profiling, OpenVINO ``query_model``, ExecuTorch's delegation record) and from the versioned
op-support tables here (``data/tflite_ops.yaml``) where it cannot (TFLite's XNNPACK delegate, TFLite
Micro's kernels); ``Target.reports_placement`` says whether a target can. This module holds what
they share: the report types, the op tables, and :func:`placement` by target name."""

from __future__ import annotations

import collections
import dataclasses
import functools
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.targets.base import get_target

DATA = Path(__file__).parent / "data"  # versioned op-support tables


@dataclasses.dataclass(frozen=True)
class OpPlacement:
    node: str  # node name, or the operator type when the runtime reports per type
    op: str
    where: str  # execution provider, device, "XNNPACK", "portable", ...
    supported: bool = True
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PlacementReport:
    target: str
    model: str
    rows: list[OpPlacement]
    source: str  # how we know: "profiling", "query_model", "delegation", "op table"

    @property
    def summary(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        for r in self.rows:
            counts[r.where if r.supported else f"unsupported ({r.where})"] += r.count
        return dict(sorted(counts.items()))

    @property
    def unsupported(self) -> list[OpPlacement]:
        return [r for r in self.rows if not r.supported]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "model": self.model, "source": self.source, "summary": self.summary,
                "rows": [r.to_dict() for r in self.rows]}


def placement(model: Model, target: str, **options: Any) -> PlacementReport:
    """Where each op of ``model`` runs on ``target`` (a BadInput for targets that cannot tell)."""
    return get_target(target).placement(model, **options)


@functools.cache
def op_table(name: str) -> frozenset[str]:
    """A versioned op-support list from data/tflite_ops.yaml (``xnnpack`` or ``tflite_micro``)."""
    import yaml

    tables = yaml.safe_load((DATA / "tflite_ops.yaml").read_text())
    return frozenset(tables[name])
