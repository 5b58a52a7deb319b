"""ONNX nodes as the TFLite builtins onnx2tf makes of them (``lowering.yaml``), so the TFLite
accelerators' rules can judge an ONNX model before it is converted.

Each case in the table is a predicate here, looked up by name; a node takes the first case that
holds, else ``default``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.targets.hwmap.graph import Graph, Node

LOWERING_FILE = Path(__file__).with_name("lowering.yaml")
# Ops whose output onnx2tf folds into the producer's fused activation (TFLite's fused_activation_function).
FUSING_PRODUCERS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "AveragePool", "MaxPool",
                    "Concat"}

Case = Callable[[Node, Graph], bool]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        CASES[name] = fn
        return fn
    return deco


def _channels(graph: Graph, name: str) -> int | None:
    shape = graph.tensor(name).shape
    return shape[1] if shape and len(shape) > 1 and isinstance(shape[1], int) else None


@case("depthwise")
def _depthwise(node: Node, graph: Graph) -> bool:
    group = int(node.attrs.get("group", 1))
    return group > 1 and group == _channels(graph, node.inputs[0])


@case("grouped")
def _grouped(node: Node, graph: Graph) -> bool:
    return int(node.attrs.get("group", 1)) > 1 and not _depthwise(node, graph)


@case("fused")
def _fused(node: Node, graph: Graph) -> bool:
    """An activation (Relu, Relu6-Clip, Tanh) or a BatchNormalization/Add onnx2tf folds into the op before it."""
    producer = graph.producers().get(node.inputs[0]) if node.inputs else None
    if producer is None or producer.folded or len(graph.consumers().get(node.inputs[0], [])) != 1:
        return False
    if node.op == "BatchNormalization":
        return producer.op in ("Conv", "ConvTranspose", "Gemm")
    if node.op == "Add":  # a bias add after a conv or a matmul with constant weights
        return producer.op in ("Conv", "MatMul", "Gemm") and any(graph.tensor(i).const for i in node.inputs[1:])
    if node.op == "Clip" and not (_relu6(node, graph) or _relu_n1_to_1(node, graph)):
        return False
    return producer.op in FUSING_PRODUCERS


def _clip_bounds(node: Node, graph: Graph) -> tuple[float | None, float | None]:
    if "min" in node.attrs or "max" in node.attrs:  # Clip before opset 11
        return node.attrs.get("min"), node.attrs.get("max")
    lo = graph.values.get(node.inputs[1], [None])[0] if len(node.inputs) > 1 and node.inputs[1] else None
    hi = graph.values.get(node.inputs[2], [None])[0] if len(node.inputs) > 2 and node.inputs[2] else None
    return lo, hi


@case("relu6")
def _relu6(node: Node, graph: Graph) -> bool:
    return _clip_bounds(node, graph) == (0.0, 6.0)


@case("relu_n1_to_1")
def _relu_n1_to_1(node: Node, graph: Graph) -> bool:
    return _clip_bounds(node, graph) == (-1.0, 1.0)


@case("square")
def _square(node: Node, graph: Graph) -> bool:
    return len(node.inputs) > 1 and graph.values.get(node.inputs[1]) == [2.0]


@case("const_b")
def _const_b(node: Node, graph: Graph) -> bool:
    b = graph.tensor(node.inputs[1]) if len(node.inputs) > 1 else None
    return b is not None and b.const and b.rank == 2


@case("reflect")
def _reflect(node: Node, graph: Graph) -> bool:
    return node.attrs.get("mode") == "reflect"


@case("edge")
def _edge(node: Node, graph: Graph) -> bool:
    return node.attrs.get("mode") == "edge"


@case("nearest")
def _nearest(node: Node, graph: Graph) -> bool:
    return node.attrs.get("mode", "nearest") == "nearest"


def _near(values: list[float] | None, target: float) -> bool:
    return values is not None and len(values) == 1 and abs(values[0] - target) < 1e-3


def gelu_patterns(graph: Graph) -> dict[str, str]:
    """Node name -> "erf" or "part" for each exact-GELU subgraph x * 0.5 * (1 + Erf(x / sqrt 2)),
    which onnx2tf replaces by one GELU builtin (computed once per graph)."""
    if "_gelu" in graph.__dict__:
        return graph.__dict__["_gelu"]
    found: dict[str, str] = {}
    producers, consumers = graph.producers(), graph.consumers()

    def const_of(node: Node) -> list[float] | None:
        return next((graph.values[i] for i in node.inputs if i in graph.values), None)

    def only_user(node: Node) -> Node | None:
        users = consumers.get(node.outputs[0], [])
        return users[0] if len(users) == 1 else None

    for erf in (n for n in graph.nodes if n.op == "Erf"):
        scale = producers.get(erf.inputs[0])
        if scale is None or not ((scale.op == "Div" and _near(const_of(scale), 2 ** 0.5))
                                 or (scale.op == "Mul" and _near(const_of(scale), 2 ** -0.5))):
            continue
        x = next(i for i in scale.inputs if i not in graph.values)
        add = only_user(erf)
        if add is None or add.op != "Add" or not _near(const_of(add), 1.0):
            continue
        chain, node, has_half, has_x = [], add, False, False
        for _ in range(2):
            node = only_user(node)
            if node is None or node.op != "Mul":
                break
            chain.append(node)
            has_half |= _near(const_of(node), 0.5)
            has_x |= x in node.inputs
        if has_half and has_x:
            found[erf.name] = "erf"
            found.update({n.name: "part" for n in (scale, add, *chain)})
    graph.__dict__["_gelu"] = found
    return found


@case("gelu")
def _gelu(node: Node, graph: Graph) -> bool:
    """The Erf of an exact-GELU subgraph (it becomes GELU)."""
    return gelu_patterns(graph).get(node.name) == "erf"


@case("gelu_part")
def _gelu_part(node: Node, graph: Graph) -> bool:
    """The Div/Add/Mul around that Erf (they vanish into the GELU)."""
    return gelu_patterns(graph).get(node.name) == "part"


@functools.cache
def lowering_table() -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(LOWERING_FILE.read_text())
    for op, entry in data["ops"].items():
        if isinstance(entry, dict):
            unknown = set(entry) - set(CASES) - {"default"}
            if unknown or "default" not in entry:
                raise BadInput(f"lowering.yaml: {op}: unknown case(s) {', '.join(sorted(unknown))} or no default")
    return data


def lower(node: Node, graph: Graph) -> tuple[str, ...] | None:
    """The TFLite builtins ``node`` becomes (() when it vanishes), or None when onnx2tf cannot
    convert it; an op the table does not know is None too (see :func:`known`)."""
    entry = lowering_table()["ops"].get(node.op)
    if entry is None:
        return None
    if isinstance(entry, list):
        return tuple(entry)
    for name, ops in entry.items():
        if name != "default" and CASES[name](node, graph):
            return tuple(ops)
    return tuple(entry["default"])


def known(op: str) -> bool:
    return op in lowering_table()["ops"]


def builtins_made() -> set[str]:
    """Every builtin the table can emit (each must have a rule in the TFLite CPU rules)."""
    out: set[str] = set()
    for entry in lowering_table()["ops"].values():
        for ops in (entry.values() if isinstance(entry, dict) else [entry or []]):
            out.update(ops)
    return out
