"""The hardware map: place every node of a graph on the best unit of a target, find the
partitions, the hand-offs between them and their cost, and name what causes each split.

    graph = read_onnx("model.onnx")
    hw = build_map(graph, map_target("edgetpu"))
    hw.summary()  # {"partitions": 3, "fallback_nodes": 4, ...}

Placement follows the target's policy: a node goes to the first unit (NPU, then GPU, then CPU)
whose rules take it. Two quirks of real runtimes are policy too: the Edge TPU compiler maps one
segment only (``single_segment``), and the TFLite GPU delegate keeps only its largest partition
(``max_partitions``). Partitions are made the way TFLite's graph partitioner makes them: nodes are
taken in dependency order, and a partition grows while a node of its unit is ready."""

from __future__ import annotations

import dataclasses
import functools
import heapq
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from edgeship.targets.hwmap.graph import Graph, Node
from edgeship.targets.hwmap.lowering import lower
from edgeship.targets.hwmap.profiles import MapTarget, Unit
from edgeship.targets.hwmap.result import (
    ELIDED,
    FOLDED,
    PLACED,
    UNPLACED,
    Boundary,
    HardwareMap,
    NodePlacement,
    Partition,
    Problem,
    Split,
)
from edgeship.targets.hwmap.rules import Verdict

SUGGESTIONS_FILE = Path(__file__).with_name("suggestions.yaml")
NOWHERE = "\0none"  # the pseudo-unit of unplaced nodes while partitioning


def build_map(graph: Graph, target: MapTarget, model_label: str | None = None) -> HardwareMap:
    """The map of ``graph`` on ``target`` (no pre-flight against a device runtime: see preflight)."""
    from edgeship.core.errors import BadInput

    if graph.vocabulary == "tflite" and any(u.rules.vocabulary == "onnx" for u in target.units):
        raise BadInput(f"{target.name} maps ONNX models; give the .onnx file, not a .tflite")
    needs_lowering = graph.vocabulary == "onnx" and any(u.rules.vocabulary == "tflite" for u in target.units)
    places = [_place(node, graph, target, needs_lowering) for node in graph.nodes]
    by_name = {p.name: p for p in places}
    nodes = {n.name: n for n in graph.nodes}
    deps = _dependencies(graph, places)
    if target.single_segment:
        _one_segment(places, graph, target, deps)
    partitions = _partitions(places, deps)
    for unit, keep in target.max_partitions.items():
        if _limit_partitions(places, partitions, unit, keep, graph, target, needs_lowering):
            partitions = _partitions(places, deps)
    for p in partitions:
        for name in p.nodes:
            by_name[name].partition = p.index
    boundaries = _boundaries(graph, places, target)
    label = model_label or graph.name
    hw = HardwareMap(target.name, label, tuple(u.name for u in target.units),
                     tuple(u.rules.label for u in target.units), _sources(target), places, partitions, boundaries,
                     [], [], target.link.basis, list(graph.notes))
    hw.edges = [(src, dst) for dst, srcs in deps.items() for src in sorted(srcs)]
    hw.splits = _splits(hw, graph, nodes, target, label)
    hw.problems = _load_problems(hw.splits, target)
    return hw


def _load_problems(splits: list[Split], target: MapTarget) -> list[Problem]:
    """The splits no unit takes are why the model does not load: one problem per op, and one for
    all the nodes refused for their dynamic shapes."""
    dynamic = [s for s in splits if s.unit is None and _reason_kind(s.reason) == "dynamic"]
    out = [Problem("op", f"{len(s.nodes)} × {s.op}: {s.reason}", s.suggestion)
           for s in splits if s.unit is None and s not in dynamic]
    if dynamic:
        count = sum(len(s.nodes) for s in dynamic)
        out.append(Problem("dynamic_shape", f"{count} node(s) have dynamic shapes; the "
                           f"{target.accelerator.rules.title} needs static shapes", dynamic[0].suggestion))
    return out


# -- placing -------------------------------------------------------------------------------------
def _place(node: Node, graph: Graph, target: MapTarget, needs_lowering: bool) -> NodePlacement:
    place = NodePlacement(node.name, node.op, node.version, node.dtype, FOLDED if node.folded else PLACED)
    if node.folded:
        return place
    lowered = lower(node, graph) if needs_lowering else None
    place.lowered = lowered
    if needs_lowering and lowered == ():
        place.status = ELIDED
        return place
    first_refusal: tuple[str, Verdict] | None = None
    for unit in target.units:
        verdict = _unit_takes(unit, node, graph, lowered, needs_lowering)
        if verdict.ok:
            place.unit = unit.name
            if first_refusal:
                place.why, place.cite = first_refusal[1].reason, f"{first_refusal[0]}/{first_refusal[1].cite}"
            return place
        if first_refusal is None:
            first_refusal = (unit.rules.label, verdict)
    place.status = UNPLACED
    assert first_refusal is not None
    place.why, place.cite = first_refusal[1].reason, f"{first_refusal[0]}/{first_refusal[1].cite}"
    if len(target.units) > 1:  # say why the last unit refused too: that is what stops the load
        last = _unit_takes(target.units[-1], node, graph, lowered, needs_lowering)
        place.why += f"; and {last.reason}" if last.reason and last.reason != place.why else ""
    return place


def _unit_takes(unit: Unit, node: Node, graph: Graph, lowered: tuple[str, ...] | None, needs_lowering: bool) -> Verdict:
    rules = unit.rules
    if rules.vocabulary == "tflite" and graph.vocabulary == "onnx":
        if lowered is None:
            return Verdict(False, f"{node.op} has no TFLite conversion (onnx2tf cannot convert it)", known=False)
        as_tflite = node
        if node.dtype == "int64":  # TFLite's shape and index tensors are int32; onnx2tf converts int64 to them
            as_tflite = dataclasses.replace(node, dtype="int32")
        for op in lowered:
            verdict = rules.check(as_tflite, graph, op)
            if not verdict.ok:
                return verdict
        return Verdict(True)
    return rules.check(node, graph)


def _dependencies(graph: Graph, places: list[NodePlacement]) -> dict[str, set[str]]:
    """For each node that runs, the nodes that run and that it waits for; folded and elided nodes
    are looked through (an elided node's consumers wait for what it waited for)."""
    status = {p.name: p.status for p in places}
    producers = graph.producers()
    memo: dict[str, frozenset[str]] = {}

    def sources(tensor: str) -> frozenset[str]:
        if tensor in memo:
            return memo[tensor]
        memo[tensor] = frozenset()  # cycle guard
        node = producers.get(tensor)
        if node is None or status[node.name] == FOLDED:
            found: frozenset[str] = frozenset()
        elif status[node.name] == ELIDED:
            found = frozenset().union(*(sources(i) for i in node.inputs if i)) if node.inputs else frozenset()
        else:
            found = frozenset({node.name})
        memo[tensor] = found
        return found

    return {n.name: set().union(*(sources(i) for i in n.inputs if i)) if n.inputs else set()
            for n in graph.nodes if status[n.name] in (PLACED, UNPLACED)}


def _one_segment(places: list[NodePlacement], graph: Graph, target: MapTarget, deps: dict[str, set[str]]) -> None:
    """After the first node the accelerator does not take, nothing more runs on it."""
    first = target.accelerator.name
    cut: NodePlacement | None = None
    nodes = {n.name: n for n in graph.nodes}
    for p in places:
        if p.status not in (PLACED, UNPLACED):
            continue
        if cut is None and p.unit != first:
            cut = p
            continue
        if cut is not None and p.unit == first:
            for unit in target.units[1:]:
                if _unit_takes(unit, nodes[p.name], graph, p.lowered, p.lowered is not None).ok:
                    p.unit = unit.name
                    p.why = (f"after {cut.name} ({cut.op}) the {target.accelerator.rules.title} compiler maps "
                             "no more ops: it cannot partition the model more than once")
                    p.cite = f"{target.accelerator.rules.label}/{next(iter(target.accelerator.rules.sources))}"
                    break
            else:
                p.status, p.unit = UNPLACED, None


def _partitions(places: list[NodePlacement], deps: dict[str, set[str]]) -> list[Partition]:
    """Contiguous partitions: take ready nodes of the current unit while there are any, then switch
    to the unit of the earliest ready node (TFLite's PartitionGraphIntoIndependentNodeSubsets)."""
    order = {p.name: i for i, p in enumerate(places)}
    # unplaced nodes take part as a unit of their own (they break runs) but make no partition
    unit_of = {p.name: p.unit if p.status == PLACED else NOWHERE for p in places if p.status in (PLACED, UNPLACED)}
    waiting = {n: len(d & unit_of.keys()) for n, d in deps.items() if n in unit_of}
    users: dict[str, list[str]] = defaultdict(list)
    for n, d in deps.items():
        if n in unit_of:
            for src in d & unit_of.keys():
                users[src].append(n)
    ready: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for n, count in waiting.items():
        if count == 0:
            heapq.heappush(ready[unit_of[n]], (order[n], n))
    out: list[Partition] = []
    while any(ready.values()):
        unit = min((heap[0][0], u) for u, heap in ready.items() if heap)[1]
        members: list[str] = []
        while ready[unit]:
            _, n = heapq.heappop(ready[unit])
            members.append(n)
            for user in users[n]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready[unit_of[user]], (order[user], user))
        if unit != NOWHERE:
            out.append(Partition(len(out), unit, tuple(sorted(members, key=order.__getitem__))))
    return out


def _limit_partitions(places: list[NodePlacement], partitions: list[Partition], unit: str, keep: int, graph: Graph,
                      target: MapTarget, needs_lowering: bool) -> bool:
    """Keep only the ``keep`` largest partitions on ``unit``; the others fall to the next unit."""
    mine = sorted((p for p in partitions if p.unit == unit), key=lambda p: (-len(p.nodes), p.index))
    dropped = [p for p in mine[keep:]]
    if not dropped:
        return False
    by_name = {p.name: p for p in places}
    nodes = {n.name: n for n in graph.nodes}
    later = target.units[[u.name for u in target.units].index(unit) + 1:]
    for part in dropped:
        for name in part.nodes:
            p = by_name[name]
            for u in later:
                if _unit_takes(u, nodes[name], graph, p.lowered, needs_lowering).ok:
                    p.unit = u.name
                    p.why = (f"the {target.units[0].rules.title} takes only its {keep} largest partition(s); "
                             f"this one ({len(part.nodes)} nodes) falls back")
                    p.cite = f"{target.units[0].rules.label}/{next(iter(target.units[0].rules.sources))}"
                    break
            else:
                p.status, p.unit = UNPLACED, None
    return True


def _boundaries(graph: Graph, places: list[NodePlacement], target: MapTarget) -> list[Boundary]:
    """The tensors each partition hands to a partition on another unit, with their bytes."""
    by_name = {p.name: p for p in places}
    producers = graph.producers()
    crossing: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)

    def source_tensor(tensor: str) -> list[str]:
        """The tensors of placed nodes that ``tensor`` is (looking through elided nodes)."""
        node = producers.get(tensor)
        if node is None or by_name[node.name].status == FOLDED:
            return []
        if by_name[node.name].status == ELIDED:
            return [t for i in node.inputs if i for t in source_tensor(i)]
        return [tensor]

    for node in graph.nodes:
        dst = by_name[node.name]
        if dst.status != PLACED:
            continue
        for i in node.inputs:
            for t in (source_tensor(i) if i else []):
                src = by_name[producers[t].name]
                if src.status == PLACED and src.partition != dst.partition and src.unit != dst.unit:
                    crossing[(src.partition, dst.partition)][t] = graph.tensor(t).nbytes()
    unit_of = {p.partition: p.unit or "?" for p in places if p.partition is not None}
    return [Boundary(a, b, unit_of[a], unit_of[b], tuple(sorted(tensors.items())),
                     target.link.cost_us(sum(tensors.values())))
            for (a, b), tensors in sorted(crossing.items())]


# -- explaining ----------------------------------------------------------------------------------
@functools.cache
def _suggestion_table() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SUGGESTIONS_FILE.read_text())


def _reason_kind(why: str) -> str:
    if why.startswith("dynamic shape"):
        return "dynamic"
    if " computes in int64" in why or " computes in int32" in why:
        return "dtype_index"
    if " computes in " in why:
        return "dtype_int" if any(t in why.split(" takes ")[-1] for t in ("int8", "uint8", "int16")) and \
            "fp32" not in why.split(" takes ")[-1] else "dtype_float"
    if " version " in why and ("newer" in why or "older" in why or "takes version" in why):
        return "version"
    if "no TFLite conversion" in why:
        return "unconvertible"
    if "cannot partition the model more than once" in why:
        return "single_segment"
    if "largest partition" in why:
        return "partition_limit"
    if "rank-" in why:
        return "rank"
    if "computed at run time" in why:
        return "const"
    return "default"


def _example_shape(graph: Graph) -> str:
    dyn = graph.dynamic_inputs
    if not dyn:
        return "NAME:D0,D1,..."
    t = dyn[0]
    # batch 1; other symbolic dims at 32, the sequence length edgeship benchmarks at by default
    dims = ",".join(str(d) if isinstance(d, int) and d > 0 else ("1" if i == 0 else "32")
                    for i, d in enumerate(t.shape or ()))
    return f"{t.name}:{dims}"


def suggestion(op: str, why: str, target: MapTarget, partitions: int, model: str, graph: Graph) -> str:
    table = _suggestion_table()
    kind = _reason_kind(why)
    fix = table["ops"].get(op.split(":")[-1]) if kind in ("default", "unconvertible") else None
    fix = fix or table["reasons"][kind]
    fix = fix.format(unit=target.accelerator.rules.title, model=model, shape=_example_shape(graph),
                     partitions=partitions)
    if target.has_fallback and kind not in ("unconvertible",):
        fix += f", or accept {partitions} partition{'s' if partitions != 1 else ''}"
    return fix


def _splits(hw: HardwareMap, graph: Graph, nodes: dict[str, Node], target: MapTarget, model: str) -> list[Split]:
    """One entry per (op, where it went, why): the nodes that leave the preferred unit."""
    groups: dict[tuple[str, str | None, str], list[str]] = defaultdict(list)
    first_why: dict[tuple[str, str | None, str], str] = {}
    for p in hw.nodes:
        if p.status == UNPLACED or (p.status == PLACED and p.unit != hw.units[0]):
            key = (p.op, p.unit, re.sub(r"\([^)]*\)", "(…)", p.why))  # one entry per kind, not per tensor
            groups[key].append(p.name)
            first_why.setdefault(key, p.why)
    out = []
    for key, names in groups.items():
        op, unit, _ = key
        title = target.accelerator.rules.title
        reason = first_why[key] or f"{op} does not run on the {title}"
        out.append(Split(op, unit, reason, tuple(names),
                         suggestion(op, reason, target, len(hw.partitions), model, graph)))
    out.sort(key=lambda s: (s.unit is not None, -len(s.nodes), s.op))
    return out


def _sources(target: MapTarget) -> dict[str, str]:
    return {f"{u.rules.label}/{sid}": s.cite() for u in target.units for sid, s in u.rules.sources.items()}
