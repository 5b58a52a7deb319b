"""What a hardware map says: where each node runs, the partitions, the hand-offs between them and
what they cost, the nodes that cause the splits (with a suggestion each), the problems that keep
the model from loading, and — where a runtime answered — how far the map agrees with it."""

from __future__ import annotations

import dataclasses
from typing import Any

# node status
PLACED, FOLDED, ELIDED, UNPLACED = "placed", "folded", "elided", "unplaced"


@dataclasses.dataclass
class NodePlacement:
    name: str
    op: str
    version: int
    dtype: str | None
    status: str  # placed, folded (a constant), elided (the converter fuses or drops it), unplaced
    unit: str | None = None
    partition: int | None = None
    why: str = ""  # why it is not on the preferred unit (the first refusal that decided it)
    cite: str = ""  # "rules-name v1 / source id" of the deciding rule
    lowered: tuple[str, ...] | None = None  # the TFLite builtins it becomes (TFLite targets)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.lowered is None:
            d.pop("lowered")
        else:
            d["lowered"] = list(self.lowered)
        return d


@dataclasses.dataclass(frozen=True)
class Partition:
    index: int
    unit: str
    nodes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "unit": self.unit, "size": len(self.nodes), "nodes": list(self.nodes)}


@dataclasses.dataclass(frozen=True)
class Boundary:
    src: int  # partition index the tensors leave
    dst: int
    src_unit: str
    dst_unit: str
    tensors: tuple[tuple[str, int], ...]  # (tensor, bytes)
    cost_us: float  # estimated under the target's assumed link

    @property
    def nbytes(self) -> int:
        return sum(b for _, b in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.src, "to": self.dst, "from_unit": self.src_unit, "to_unit": self.dst_unit,
                "bytes": self.nbytes, "estimated_us": round(self.cost_us, 1),
                "tensors": [{"name": n, "bytes": b} for n, b in self.tensors]}


@dataclasses.dataclass(frozen=True)
class Split:
    """The nodes of one kind that leave the preferred unit, why, and what to do about it."""

    op: str
    unit: str | None  # where they run instead (None: nowhere — the model does not load)
    reason: str
    nodes: tuple[str, ...]
    suggestion: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "unit": self.unit, "count": len(self.nodes), "reason": self.reason,
                "suggestion": self.suggestion, "nodes": list(self.nodes)}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing that keeps the model from loading on the target (a pre-flight finding)."""

    kind: str  # op, op_version, opset, dynamic_shape, dtype, memory, runtime
    what: str
    fix: str = ""
    blocking: bool = True  # False: the model loads, but not as the target intends (a warning)

    def __str__(self) -> str:
        return f"{self.what}; {self.fix}" if self.fix else self.what

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Disagreement:
    node: str
    op: str
    map_says: str
    runtime_says: str
    why: str  # the explanation (every disagreement has one; "unexplained" marks the ones to study)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CrossCheck:
    runtime: str  # "onnxruntime 1.32.0 profiling", "openvino 2026.4 query_model (CPU)", ...
    compared: int  # nodes both the map and the runtime name
    agreed: int
    disagreements: tuple[Disagreement, ...]
    not_reported: tuple[str, ...] = ()  # map nodes the runtime does not list (fused, folded by it)
    note: str = ""

    @property
    def agreement(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "compared": self.compared, "agreed": self.agreed,
                "agreement": round(self.agreement, 4), "note": self.note,
                "disagreements": [d.to_dict() for d in self.disagreements],
                "not_reported": list(self.not_reported)}


@dataclasses.dataclass
class HardwareMap:
    target: str
    model: str
    units: tuple[str, ...]  # in policy order
    rules: tuple[str, ...]  # "name vN" of each unit's rules
    sources: dict[str, str]  # "rules/source-id" -> citation
    nodes: list[NodePlacement]
    partitions: list[Partition]
    boundaries: list[Boundary]
    splits: list[Split]
    problems: list[Problem]
    link_basis: str
    notes: list[str] = dataclasses.field(default_factory=list)
    device_runtime: str | None = None
    crosscheck: CrossCheck | None = None
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (from, to) between nodes that run

    # -- figures --------------------------------------------------------------------------------
    @property
    def placed(self) -> list[NodePlacement]:
        return [n for n in self.nodes if n.status == PLACED]

    @property
    def fallback_nodes(self) -> list[NodePlacement]:
        """Placed nodes that are not on the preferred unit."""
        return [n for n in self.placed if n.unit != self.units[0]]

    @property
    def unplaced(self) -> list[NodePlacement]:
        return [n for n in self.nodes if n.status == UNPLACED]

    @property
    def transitions(self) -> int:
        """Hand-offs between units in execution order."""
        return sum(1 for a, b in zip(self.partitions, self.partitions[1:], strict=False) if a.unit != b.unit)

    @property
    def full_offload(self) -> bool:
        return not self.fallback_nodes and not self.unplaced

    @property
    def loads(self) -> bool:
        return not any(p.blocking for p in self.problems)

    @property
    def handoff_bytes(self) -> int:
        return sum(b.nbytes for b in self.boundaries)

    @property
    def handoff_us(self) -> float:
        return sum(b.cost_us for b in self.boundaries)

    def by_unit(self) -> dict[str, int]:
        counts = {u: 0 for u in self.units}
        for n in self.placed:
            counts[n.unit or "?"] = counts.get(n.unit or "?", 0) + 1
        if self.unplaced:
            counts["none"] = len(self.unplaced)
        return counts

    def gate_failures(self, max_partitions: int | None = None, require_full_offload: bool = False,
                      max_fallback_nodes: int | None = None) -> list[str]:
        """Which of the map gates this map fails, each in one line (empty: all pass)."""
        out = []
        if max_partitions is not None and len(self.partitions) > max_partitions:
            out.append(f"{len(self.partitions)} partitions on {self.target}, more than --max-partitions "
                       f"{max_partitions}")
        if require_full_offload and not self.full_offload:
            off = len(self.fallback_nodes) + len(self.unplaced)
            out.append(f"{off} node(s) are not on the {self.units[0]} of {self.target} (--require-full-offload)")
        if max_fallback_nodes is not None and len(self.fallback_nodes) > max_fallback_nodes:
            out.append(f"{len(self.fallback_nodes)} fallback nodes on {self.target}, more than --max-fallback-nodes "
                       f"{max_fallback_nodes}")
        return out

    def summary(self) -> dict[str, Any]:
        return {"nodes": len(self.placed) + len(self.unplaced), "by_unit": self.by_unit(),
                "partitions": len(self.partitions), "transitions": self.transitions,
                "fallback_nodes": len(self.fallback_nodes), "unplaced_nodes": len(self.unplaced),
                "full_offload": self.full_offload, "loads": self.loads,
                "folded": sum(1 for n in self.nodes if n.status in (FOLDED, ELIDED)),
                "handoff_bytes": self.handoff_bytes, "estimated_handoff_us": round(self.handoff_us, 1)}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "model": self.model, "units": list(self.units), "rules": list(self.rules),
                "device_runtime": self.device_runtime, "summary": self.summary(),
                "splits": [s.to_dict() for s in self.splits], "problems": [p.to_dict() for p in self.problems],
                "partitions": [p.to_dict() for p in self.partitions],
                "boundaries": [b.to_dict() for b in self.boundaries],
                "cost_basis": self.link_basis, "notes": list(self.notes), "sources": dict(self.sources),
                "crosscheck": self.crosscheck.to_dict() if self.crosscheck else None,
                "nodes": [n.to_dict() for n in self.nodes], "edges": [list(e) for e in self.edges]}
