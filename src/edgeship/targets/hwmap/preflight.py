"""Pre-flight: what would keep a model from loading on a target, before anyone ships it.

Two halves. :func:`requirements` reads a model once and writes down what any runtime must have to
load it — format, opsets, operators with their versions, data types, dynamic inputs, weight and
activation bytes — as a small JSON-able record (``ship publish`` signs it into the release's
metadata). :func:`check_requirements` judges such a record against a map target and a device
runtime version with nothing but the record, which is how the device agent refuses a release
before downloading it. :func:`preflight` does both for a model file, and adds what only the full
graph can tell (ops no unit takes, in context)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import installed_version
from edgeship.targets.hwmap.graph import Graph
from edgeship.targets.hwmap.profiles import MapTarget, device_target, map_target
from edgeship.targets.hwmap.result import Problem

RUNTIMES_FILE = Path(__file__).with_name("runtimes.yaml")
REQUIREMENTS_VERSION = 1


@functools.cache
def runtime_table() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(RUNTIMES_FILE.read_text())["runtimes"]


def _version(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def release_facts(runtime: str, version: str) -> tuple[str, dict[str, Any]] | None:
    """The runtimes.yaml row that governs ``runtime`` ``version`` (the newest row not newer than
    it), or None when the table does not cover that runtime or a release that old."""
    table = runtime_table().get(runtime)
    if not table:
        return None
    rows = sorted(table["releases"].items(), key=lambda kv: _version(kv[0]))
    older = [(k, v) for k, v in rows if _version(k) <= _version(version)]
    return older[-1] if older else None


# -- the record ----------------------------------------------------------------------------------
def activation_peak_bytes(graph: Graph) -> int:
    """An estimate of the largest set of live intermediate tensors (symbolic dims as 1): a tensor is
    live from its producer until its last consumer, in graph order."""
    last_use: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for t in n.inputs:
            if t:
                last_use[t] = i
    live: dict[str, int] = {t: graph.tensor(t).nbytes() for t in graph.inputs}
    peak = sum(live.values())
    for i, n in enumerate(graph.nodes):
        if n.folded:
            continue
        for t in n.outputs:
            if t and not graph.tensor(t).const:
                live[t] = graph.tensor(t).nbytes()
        peak = max(peak, sum(live.values()))
        for t in [t for t in live if last_use.get(t, -1) <= i and t not in graph.outputs]:
            live.pop(t)
    return peak


def weights_bytes(graph: Graph) -> int:
    return sum(t.nbytes() for t in graph.tensors.values() if t.const and t.name not in graph.producers())


def requirements(graph: Graph, model_format: str, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a runtime must have to load this graph (JSON-able; integers only, as TUF's canonical
    JSON requires)."""
    ops = sorted({f"{n.op}@{n.version}" for n in graph.nodes if not n.folded})
    dynamic = {t.name: ["?" if not (isinstance(d, int) and d > 0) else d for d in (t.shape or ())]
               for t in graph.dynamic_inputs}
    record: dict[str, Any] = {
        "version": REQUIREMENTS_VERSION, "format": model_format, "vocabulary": graph.vocabulary,
        "opsets": dict(sorted(graph.opsets.items())), "ops": ops,
        "dtypes": sorted({n.dtype for n in graph.nodes if n.dtype and not n.folded}),
        "dynamic_inputs": dynamic, "weights_bytes": weights_bytes(graph),
        "activation_peak_bytes": activation_peak_bytes(graph)}
    if facts and facts.get("arena_bytes"):
        record["arena_bytes"] = int(facts["arena_bytes"])
    return record


# -- judging a record ----------------------------------------------------------------------------
def check_requirements(req: dict[str, Any], target: MapTarget | str, runtime_version: str | None = None,
                       memory_budget: int | None = None) -> list[Problem]:
    """Why a model with these requirements would not load on ``target`` (with ``runtime_version``
    of its runtime, and at most ``memory_budget`` bytes), from the record alone."""
    target = map_target(target) if isinstance(target, str) else target
    problems: list[Problem] = []
    if req.get("version", 0) > REQUIREMENTS_VERSION:
        problems.append(Problem("runtime", f"the release's requirements record is version {req['version']}; this "
                                "edgeship reads version 1", "update the device agent"))
        return problems
    problems += _opset_problems(req, target, runtime_version)
    problems += _op_problems(req, target)
    problems += _shape_and_dtype_problems(req, target)
    if memory_budget is not None:
        problems += _memory_problems(req, memory_budget)
    return problems


def _opset_problems(req: dict[str, Any], target: MapTarget, runtime_version: str | None) -> list[Problem]:
    if not runtime_version or not target.runtime:
        return []
    row = release_facts(target.runtime, runtime_version)
    if row is None:
        known = runtime_table().get(target.runtime)
        if known is None:
            return [Problem("runtime", f"no release table for {target.runtime}: {target.runtime} {runtime_version} "
                            "cannot be checked", "", blocking=False)]
        oldest = min(known["releases"], key=_version)
        return [Problem("runtime", f"{target.runtime} {runtime_version} is older than every release the table knows "
                        f"(from {oldest})", f"update the device's {target.runtime}")]
    name, facts = row
    need = req.get("opsets", {}).get("ai.onnx")
    if need and facts.get("opset") and need > facts["opset"]:
        return [Problem("opset", f"the model uses ONNX opset {need}; {target.runtime} {runtime_version} implements "
                        f"opsets up to {facts['opset']} (release row {name})",
                        f"export with --opset {facts['opset']} or update the device's {target.runtime}")]
    return []


def _split_op(item: str) -> tuple[str, int]:
    op, _, version = item.rpartition("@")
    return op, int(version or 1)


def _op_problems(req: dict[str, Any], target: MapTarget) -> list[Problem]:
    """Operators no unit of the target has a kernel for (at that operator version)."""
    if req.get("vocabulary") == "onnx" and any(u.rules.vocabulary == "tflite" for u in target.units):
        return []  # an ONNX file is converted for TFLite targets; judge the converted file's record
    out = []
    for item in req.get("ops", []):
        op, version = _split_op(item)
        reasons = []
        for unit in target.units:
            why = _op_refusal(unit.rules, op, version)
            if not why:
                break
            reasons.append(why)
        else:
            out.append(Problem("op" if "version" not in reasons[-1] else "op_version",
                               f"{op} (version {version}): {reasons[-1]}",
                               "replace the op, or export/convert so it is not needed"))
    return out


def _op_refusal(rules: Any, op: str, version: int) -> str:
    if op in rules.unsupported:
        return rules.unsupported[op].get("why") or f"{op} is not supported on the {rules.title}"
    rule = rules.ops.get(op)
    if rule is None:
        return "" if rules.accepts_unlisted else f"{op} is not among the ops the {rules.title} takes"
    lo, hi, allowed = rule.get("min_version"), rule.get("max_version"), rule.get("versions")
    if (lo is not None and version < lo) or (hi is not None and version > hi) or (allowed and version not in allowed):
        return f"version {version} is outside what the {rules.title} takes"
    return ""


def _shape_and_dtype_problems(req: dict[str, Any], target: MapTarget) -> list[Problem]:
    out = []
    dynamic = req.get("dynamic_inputs") or {}
    static_units = [u for u in target.units if u.rules.limits.get("static_shapes")]
    if dynamic and static_units:
        names = ", ".join(f"{k}[{','.join(map(str, v))}]" for k, v in dynamic.items())
        blocking = len(static_units) == len(target.units)
        what = (f"dynamic inputs {names}: the {static_units[0].rules.title} needs static shapes"
                + ("" if blocking else f"; with them the model runs on {target.units[-1].name} instead"))
        out.append(Problem("dynamic_shape", what, "build a static variant (fix the dynamic dims at export or "
                           "conversion)", blocking=blocking))
    converted = req.get("vocabulary") == "onnx" and any(u.rules.vocabulary == "tflite" for u in target.units)
    for dtype in [] if converted else req.get("dtypes", []):  # a converter changes the types of an ONNX file
        takes = [u for u in target.units if not u.rules.limits.get("dtypes") or dtype in u.rules.limits["dtypes"]]
        if not takes:
            allowed = "/".join(target.units[0].rules.limits["dtypes"])
            out.append(Problem("dtype", f"the model computes in {dtype}; {target.name} takes {allowed}",
                               "quantize or convert it to a data type the target takes"))
    return out


def _memory_problems(req: dict[str, Any], budget: int) -> list[Problem]:
    if req.get("arena_bytes"):
        need, what = req["arena_bytes"], f"its tensor arena needs {req['arena_bytes']} bytes (measured)"
    else:
        need = req.get("weights_bytes", 0) + req.get("activation_peak_bytes", 0)
        what = (f"weights {req.get('weights_bytes', 0)} B + peak activations ~{req.get('activation_peak_bytes', 0)} B "
                f"(estimate) = {need} B")
    if need > budget:
        return [Problem("memory", f"{what}, over the budget of {budget} B",
                        "quantize (int8 quarters the weights), shrink the model, or raise the budget")]
    return []


def device_problems(record: dict[str, Any], runtime: str, runtime_version: str | None = None,
                    memory_budget: int | None = None) -> list[Problem]:
    """What keeps a release (its signed requirements record) from loading on a device that runs
    ``runtime`` (a report name such as ``onnxruntime-cpu``) at ``runtime_version`` (default: the
    version installed here): the blocking problems only. A runtime no map target judges has none."""
    found = device_target(runtime)
    if found is None:
        return []
    target, package = found
    version = runtime_version or installed_version(package)
    return [p for p in check_requirements(record, target, version, memory_budget) if p.blocking]


def model_requirements(model: Model) -> dict[str, Any] | None:
    """The requirements record of a model file, or None for a format the map does not read."""
    from edgeship.targets.hwmap.run import READERS

    reader = READERS.get(model.format)
    return requirements(reader(model.path), model.format, model.facts) if reader else None


def preflight(graph: Graph, target: MapTarget | str, model_format: str, runtime_version: str | None = None,
              memory_budget: int | None = None, facts: dict[str, Any] | None = None) -> list[Problem]:
    """Pre-flight problems of a model (its graph) on ``target``: the record's checks; ops no unit
    takes in context come from the map itself (see :func:`edgeship.targets.hwmap.run.map_model`)."""
    if memory_budget is not None and memory_budget <= 0:
        raise BadInput(f"--memory-budget must be a positive number of bytes, got {memory_budget}")
    return check_requirements(requirements(graph, model_format, facts), target, runtime_version, memory_budget)
