"""Placement plans: one row per node (or per operator type) with where it runs and whether it is supported."""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry, require

DATA = Path(__file__).parent / "data"


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


Placer = Callable[..., PlacementReport]
PLACERS: Registry[Placer] = Registry("placement")


def register_placer(*targets: str) -> Callable[[Placer], Placer]:
    def deco(fn: Placer) -> Placer:
        for t in targets:
            PLACERS.add(t, fn)
        return fn

    return deco


def placement(model: Model, target: str, **options: Any) -> PlacementReport:
    """Where each op of ``model`` runs on ``target`` (see the registered placers)."""
    return PLACERS.get(target)(model, target=target, **options)


@functools.cache
def op_table(name: str) -> frozenset[str]:
    """A versioned op-support list from data/tflite_ops.yaml (``xnnpack`` or ``tflite_micro``)."""
    import yaml

    tables = yaml.safe_load((DATA / "tflite_ops.yaml").read_text())
    return frozenset(tables[name])


# -- ONNX Runtime: the profiler's per-node provider ---------------------------------------------------------
@register_placer("onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt", "onnxruntime-openvino",
                 "onnxruntime-coreml", "onnxruntime-nnapi", "onnxruntime-qnn")
def ort_placement(model: Model, target: str = "onnxruntime", feeds: dict[str, Any] | None = None,
                  provider: str | None = None, **_: Any) -> PlacementReport:
    import tempfile

    from edgeship.core.data import load_data
    from edgeship.targets.base import get_target

    t = get_target(target)
    if provider is None:
        provider = getattr(t, "provider", "cpu")
    if not t.availability().runs_here:
        from edgeship.core.errors import NotRunnableHere

        raise NotRunnableHere(t.availability().why)
    from edgeship.targets.onnxruntime.runner import OrtRunner

    if feeds is None:
        feeds = load_data("data:synthetic", model.io, limit=1).samples[0]
    with tempfile.TemporaryDirectory(prefix="edgeship-ort-profile-") as tmp:
        runner = OrtRunner(model, provider=provider, profile=True, profile_dir=tmp)
        with runner:
            runner.infer(feeds)
            nodes = runner.node_providers()
    rows = [OpPlacement(n["node"], n["op"], n["provider"]) for n in nodes]
    return PlacementReport(target, str(model.path), rows, "profiling")


# -- OpenVINO: the plugin's own query ------------------------------------------------------------------------
@register_placer("openvino")
def openvino_placement(model: Model, target: str = "openvino", device: str = "CPU", **_: Any) -> PlacementReport:
    ov = require("openvino", "openvino")
    core = ov.Core()
    ov_model = core.read_model(str(model.path))
    supported = core.query_model(ov_model, device)
    rows = []
    for op in ov_model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Parameter", "Result", "Constant"):
            continue
        name = op.get_friendly_name()
        rows.append(OpPlacement(name, kind, supported.get(name, device), name in supported))
    return PlacementReport(target, str(model.path), rows, "query_model")


# -- ExecuTorch: delegated (XNNPACK) vs portable, recorded at lowering -----------------------------------------
@register_placer("executorch")
def executorch_placement(model: Model, target: str = "executorch", **_: Any) -> PlacementReport:
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
    return PlacementReport(target, str(model.path), rows, "delegation")


# -- TFLite: the ops in the file against the XNNPACK / TFLite Micro tables ---------------------------------------
def tflite_ops(path: Path) -> list[dict[str, Any]]:
    interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
    it = interp.Interpreter(model_path=str(path))
    return list(it._get_ops_details())  # the only API that lists a file's operators


@register_placer("tflite")
def tflite_placement(model: Model, target: str = "tflite", **_: Any) -> PlacementReport:
    xnn = op_table("xnnpack")
    rows = [OpPlacement(f"{d['index']}:{d['op_name']}", d["op_name"],
                        "XNNPACK" if d["op_name"] in xnn else "CPU (builtin kernels)")
            for d in tflite_ops(model.path)]
    return PlacementReport(target, str(model.path), rows, "op table")


@register_placer("tflite-micro")
def micro_placement(model: Model, target: str = "tflite-micro", **_: Any) -> PlacementReport:
    micro = op_table("tflite_micro")
    rows = [OpPlacement(f"{d['index']}:{d['op_name']}", d["op_name"], "TFLite Micro", d["op_name"] in micro)
            for d in tflite_ops(model.path)]
    return PlacementReport(target, str(model.path), rows, "op table")
