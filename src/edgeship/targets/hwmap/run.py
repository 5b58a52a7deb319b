"""One call for the hardware map of a model file on a target: read the graph, place it, add the
pre-flight findings, and — when asked and a runtime here can answer — cross-check it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.hwmap.engine import build_map
from edgeship.targets.hwmap.graph import Graph, read_onnx, read_tflite
from edgeship.targets.hwmap.preflight import check_requirements, requirements
from edgeship.targets.hwmap.profiles import map_target
from edgeship.targets.hwmap.result import HardwareMap

READERS = {"onnx": read_onnx, "tflite": read_tflite}


def read_graph(model: Model, shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The graph of a model file the map can read (ONNX, .tflite); another format is a BadInput."""
    reader = READERS.get(model.format)
    if reader is None:
        raise BadInput(f"{model.path.name} is a {model.format} file; the hardware map reads ONNX and .tflite files "
                       "(map the ONNX model the target file was converted from)")
    if shapes and model.format != "onnx":
        raise BadInput("--shape fixes the inputs of ONNX models; a .tflite file's shapes are fixed at conversion")
    return read_onnx(model.path, shapes=shapes) if shapes else reader(model.path)


def map_model(model: Model | str | Path, target: str, *, device_runtime: str | None = None,
              memory_budget: int | None = None, shapes: dict[str, tuple[int, ...]] | None = None,
              crosscheck: bool = False, source: Any = None, label: str | None = None) -> HardwareMap:
    """The hardware map of ``model`` on map target ``target``, with its pre-flight problems.

    ``device_runtime``: the device's runtime version (checked against runtimes.yaml);
    ``memory_budget``: bytes the model may use there; ``shapes``: pin dynamic inputs first;
    ``crosscheck``: ask the runtime that can answer here (hwmap/crosscheck.py); ``source``: the
    PyTorch source the ONNX file came from, for the ExecuTorch cross-check."""
    if memory_budget is not None and memory_budget <= 0:
        raise BadInput(f"--memory-budget must be a positive number of bytes, got {memory_budget}")
    model = model if isinstance(model, Model) else Model.open(model)
    profile = map_target(target)
    graph = read_graph(model, shapes)
    hw = build_map(graph, profile, label or model.path.name)
    hw.device_runtime = device_runtime
    record = requirements(graph, model.format, model.facts)
    have = {p.kind for p in hw.problems}
    for problem in check_requirements(record, profile, device_runtime, memory_budget):
        if problem.kind in ("op", "op_version", "dtype") or problem.kind in have:
            continue  # the map judged these node by node, in context
        hw.problems.append(problem)
    if crosscheck:
        from edgeship.targets.hwmap.crosscheck import cross_check

        hw.crosscheck = cross_check(hw, graph, model, profile, source=source, shapes=shapes)
    return hw
