"""ONNX nodes as the TFLite builtins edgeship's converter makes of them (``lowering.yaml``): what
onnx2tf emits for each, and what the TFLite converter then merges, moves or drops (layout
transposes, reshapes around fully-connected layers, divisions by constants), so the TFLite
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
FLOATS = {"fp32", "fp16", "bf16", "fp64"}

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


def _through_qdq(tensor: str, graph: Graph) -> tuple[Node | None, str]:
    """The node that really makes ``tensor``, looking through a QuantizeLinear/DequantizeLinear pair
    (int8 tensors, not ops, once converted), and the tensor it made."""
    producers = graph.producers()
    node = producers.get(tensor)
    if node is not None and node.op_type == "DequantizeLinear":
        q = producers.get(node.inputs[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return producers.get(q.inputs[0]), q.inputs[0]
    return node, tensor


@case("fused")
def _fused(node: Node, graph: Graph) -> bool:
    """An activation (Relu, Relu6-Clip, Tanh) or a BatchNormalization/Add onnx2tf folds into the op before it."""
    if not node.inputs:
        return False
    producer, made = _through_qdq(node.inputs[0], graph)
    if producer is None or producer.folded or len(graph.consumers().get(made, [])) != 1:
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


def _scalar(graph: Graph, name: str) -> float | None:
    """The value of a one-element constant tensor, else None."""
    values = graph.values.get(name)
    return values[0] if values is not None and len(values) == 1 else None


def _first_user(graph: Graph, tensor: str) -> Node | None:
    """The first node that reads ``tensor`` (onnx2tf's ``node.o()``), or None."""
    users = graph.consumers().get(tensor, [])
    return users[0] if users else None


def gelu_patterns(graph: Graph) -> dict[str, str]:
    """Node name -> "gelu" or "part" for each exact-GELU subgraph onnx2tf replaces by one GELU builtin
    (computed once per graph). onnx2tf 1.28.8 matches one shape only (ops/Div.py, issue 465):
    ``Div(x, 1.4142135) -> Erf -> Add(erf, 1.0) -> Mul(x, add) -> Mul(mul, 0.5)``, each the first user
    of the one before, the constants in those input positions. The Div becomes GELU, the other four
    vanish; any other order (torch's dynamo export writes ``Mul(0.5, add)`` before ``Mul(x, .)``) is
    converted op by op, its Erf as the elementary-op approximation."""
    if "_gelu" in graph.__dict__:
        return graph.__dict__["_gelu"]
    found: dict[str, str] = {}
    for div in (n for n in graph.nodes if n.op == "Div" and len(n.inputs) == 2 and not n.folded):
        sqrt2 = _scalar(graph, div.inputs[1])
        if sqrt2 is None or abs(sqrt2 - 2 ** 0.5) > 1e-6:
            continue
        x = div.inputs[0]
        erf = _first_user(graph, div.outputs[0])
        add = _first_user(graph, erf.outputs[0]) if erf is not None and erf.op == "Erf" else None
        if add is None or add.op != "Add" or len(add.inputs) != 2 or _scalar(graph, add.inputs[1]) != 1.0:
            continue
        mul_x = _first_user(graph, add.outputs[0])
        if mul_x is None or mul_x.op != "Mul" or len(mul_x.inputs) != 2 or mul_x.inputs[0] != x:
            continue
        mul_half = _first_user(graph, mul_x.outputs[0])
        if mul_half is None or mul_half.op != "Mul" or len(mul_half.inputs) != 2 or \
                _scalar(graph, mul_half.inputs[1]) != 0.5:
            continue
        found[div.name] = "gelu"
        found.update({n.name: "part" for n in (erf, add, mul_x, mul_half)})
    graph.__dict__["_gelu"] = found
    return found


@case("gelu")
def _gelu(node: Node, graph: Graph) -> bool:
    """The Div of onnx2tf's exact-GELU pattern (it becomes GELU)."""
    return gelu_patterns(graph).get(node.name) == "gelu"


@case("gelu_part")
def _gelu_part(node: Node, graph: Graph) -> bool:
    """The Erf, Add and two Muls of that pattern (they vanish into the GELU)."""
    return gelu_patterns(graph).get(node.name) == "part"


@case("const_divisor")
def _const_divisor(node: Node, graph: Graph) -> bool:
    """A float Div by a constant: the TFLite converter multiplies by its reciprocal instead (MUL)."""
    return len(node.inputs) == 2 and graph.tensor(node.inputs[1]).const and node.dtype in FLOATS


@case("clip_min")
def _clip_min(node: Node, graph: Graph) -> bool:
    """A Clip with a lower bound only: one MAXIMUM."""
    lo, hi = _clip_bounds(node, graph)
    return lo is not None and hi is None and not _has_input(node, 2)


@case("clip_max")
def _clip_max(node: Node, graph: Graph) -> bool:
    """A Clip with an upper bound only: one MINIMUM."""
    lo, hi = _clip_bounds(node, graph)
    return hi is not None and lo is None and not _has_input(node, 1)


def _has_input(node: Node, pos: int) -> bool:
    return len(node.inputs) > pos and bool(node.inputs[pos])


@case("runtime_indices")
def _runtime_indices(node: Node, graph: Graph) -> bool:
    """A Gather by indices computed at run time: onnx2tf wraps negative indices first
    (``indices + cast(indices < 0) * dim``: LESS, CAST, MUL, ADD) before the GATHER (ops/Gather.py)."""
    return len(node.inputs) > 1 and not graph.tensor(node.inputs[1]).const


def _l2_normalized(reduce: Node | None, graph: Graph) -> Node | None:
    """The Div that divides ``reduce``'s input by it, when ``reduce`` is a ReduceL2 over the last
    axis (keepdims) with that Div as its only user: the TFLite converter makes the pair one
    L2_NORMALIZATION (its kernel normalises along the last axis)."""
    if reduce is None or reduce.op != "ReduceL2" or int(reduce.attrs.get("keepdims", 1)) != 1:
        return None
    x = graph.tensor(reduce.inputs[0])
    axes = reduce.attrs.get("axes") or (graph.values.get(reduce.inputs[1]) if len(reduce.inputs) > 1 else None)
    if x.rank is None or axes is None or len(axes) != 1:
        return None
    axis = int(axes[0]) % x.rank
    last = 1 if x.name in channels_last(graph) else x.rank - 1  # channels-last: ONNX axis 1 is TF's last
    users = graph.consumers().get(reduce.outputs[0], [])
    if axis != last or len(users) != 1:
        return None
    div = users[0]
    return div if div.op == "Div" and tuple(div.inputs[:2]) == (reduce.inputs[0], reduce.outputs[0]) else None


@case("l2_normalize")
def _l2_normalize(node: Node, graph: Graph) -> bool:
    """A ReduceL2 whose Div normalises by it: one L2_NORMALIZATION."""
    return _l2_normalized(node, graph) is not None


@case("l2_normalize_div")
def _l2_normalize_div(node: Node, graph: Graph) -> bool:
    """The Div of that pattern (it vanishes into the L2_NORMALIZATION)."""
    return len(node.inputs) == 2 and _l2_normalized(graph.producers().get(node.inputs[1]), graph) is node


# -- layouts: onnx2tf runs image-like tensors channels-last ----------------------------------------
def channels_last(graph: Graph) -> set[str]:
    """The tensors onnx2tf holds channels-last (NHWC): graph inputs of rank 3 to 5 (it transposes
    them, unless told to keep them) and what is computed from them, up to a Reshape or Flatten,
    whose output is in the ONNX order again (computed once per graph)."""
    if "_channels_last" in graph.__dict__:
        return graph.__dict__["_channels_last"]
    found = {name for name in graph.inputs if (graph.tensor(name).rank or 0) in (3, 4, 5)}
    for node in graph.nodes:
        if node.op in ("Reshape", "Flatten") or node.folded:
            continue
        if any(i in found for i in node.inputs if i):
            found.update(o for o in node.outputs if o and (graph.tensor(o).rank or 0) >= 3)
    graph.__dict__["_channels_last"] = found
    return found


def _static(shape: tuple[Any, ...] | None) -> bool:
    return shape is not None and all(isinstance(d, int) and d > 0 for d in shape)


def _moves_data(shape: tuple[int, ...]) -> bool:
    """Whether NHWC -> NCHW of an NCHW ``shape`` moves data: it does unless the dims it reorders
    that are not 1 keep their order (then the converter makes the TRANSPOSE a RESHAPE)."""
    nhwc = (shape[0], *shape[2:], shape[1])
    return [d for d in nhwc if d != 1] != [d for d in shape if d != 1]


def _layout_transpose(node: Node, graph: Graph) -> bool:
    """A Reshape/Flatten of a channels-last tensor: onnx2tf transposes it back to NCHW first
    (ops/Reshape.py), and that TRANSPOSE stays when it moves data."""
    src = graph.tensor(node.inputs[0]) if node.inputs else None
    if src is None or src.name not in channels_last(graph) or (src.rank or 0) < 3:
        return False
    if not _static(src.shape):  # a dynamic dim: the converter cannot prove the transpose moves nothing
        return True
    return _moves_data(tuple(int(d) for d in src.shape))  # type: ignore[union-attr]


def _reshape_vanishes_into_fc(node: Node, graph: Graph) -> bool:
    """The TFLite converter drops a RESHAPE whose only user is a FULLY_CONNECTED with a rank-2
    output when the reshape keeps the last dimension of the tensor it is given (the FC flattens
    all but the last dimension itself: RemoveReshapeBeforeFullyConnected)."""
    users = graph.consumers().get(node.outputs[0], []) if node.outputs else []
    out = graph.tensor(node.outputs[0]) if node.outputs else None
    src = graph.tensor(node.inputs[0]) if node.inputs else None
    if len(users) != 1 or out is None or src is None or not _static(out.shape) or not _static(src.shape):
        return False
    fc = users[0]
    if not (fc.op == "Gemm" or (fc.op == "MatMul" and _const_b(fc, graph))) or out.rank != 2:
        return False
    # with no TRANSPOSE before it, the converter reshapes the NHWC tensor: its last dim is the channels
    nhwc = src.name in channels_last(graph) and not _layout_transpose(node, graph)
    return (src.shape[1] if nhwc else src.shape[-1]) == out.shape[-1]


@case("dynamic_fc_input")
def _dynamic_fc_input(node: Node, graph: Graph) -> bool:
    """A fully-connected layer (Gemm, or MatMul with constant 2-D weights) on a rank-2 input with a
    dynamic dim that no Reshape/Flatten made: onnx2tf's flatten of its input is an identity the
    TFLite converter cannot prove without static shapes, so a RESHAPE stays before it (measured on
    a dynamic-batch digits CNN; with a Reshape before it, the two merge)."""
    if not node.inputs or not (node.op == "Gemm" or _const_b(node, graph)):
        return False
    a = graph.tensor(node.inputs[0])
    producer = graph.producers().get(node.inputs[0])
    return a.rank == 2 and not _static(a.shape) and (producer is None or producer.op not in ("Reshape", "Flatten"))


@case("nchw_into_fc")
def _nchw_into_fc(node: Node, graph: Graph) -> bool:
    """A flatten of a channels-last tensor into a fully-connected layer: only the TRANSPOSE stays."""
    return _layout_transpose(node, graph) and _reshape_vanishes_into_fc(node, graph)


@case("into_fc")
def _into_fc(node: Node, graph: Graph) -> bool:
    """A reshape the FULLY_CONNECTED after it absorbs: nothing stays."""
    return not _layout_transpose(node, graph) and _reshape_vanishes_into_fc(node, graph)


@case("nchw")
def _nchw(node: Node, graph: Graph) -> bool:
    """A reshape of a channels-last tensor: TRANSPOSE back to NCHW, then RESHAPE."""
    return _layout_transpose(node, graph)


# Ops through which the TFLite converter moves a RESHAPE (an elementwise op with a constant scalar),
# and ops into which it folds one (a broadcasting elementwise op with a computed other operand).
ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}


@case("fc_reshape")
def _fc_reshape(node: Node, graph: Graph) -> bool:
    """A MatMul with constant 2-D weights on a rank-3+ input: FULLY_CONNECTED flattens the leading
    dims, and a RESHAPE restores them unless every use of the result (past its fused bias Add and
    elementwise ops with a constant) is a Reshape, which it merges into, or a broadcasting
    elementwise op with a computed other operand, which it folds into."""
    if not _const_b(node, graph) or (graph.tensor(node.inputs[0]).rank or 0) < 3:
        return False
    pending, seen = [node.outputs[0]], set()
    while pending:
        tensor = pending.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        if tensor in graph.outputs:  # an output keeps its rank
            return True
        for user in graph.consumers().get(tensor, []):
            if user.op == "Reshape":
                continue
            if user.op in ELEMENTWISE and len(user.inputs) == 2:
                other = next((i for i in user.inputs if i != tensor), tensor)
                if graph.tensor(other).const:  # the bias Add (fused) or a scalar: look further
                    pending.extend(o for o in user.outputs if o)
                    continue
                continue  # folded into the broadcast
            return True
    return False


@case("qdq_inner")
def _qdq_inner(node: Node, graph: Graph) -> bool:
    """A QuantizeLinear feeding only DequantizeLinear, or a DequantizeLinear of a constant or of such a
    Quantize: in a TFLite int8 model these are int8 tensors, not ops (only the graph's input
    QUANTIZE and output DEQUANTIZE stay)."""
    consumers, producers = graph.consumers(), graph.producers()
    if node.op_type == "QuantizeLinear":
        users = consumers.get(node.outputs[0], [])
        return bool(users) and all(u.op_type == "DequantizeLinear" for u in users)
    src = graph.tensor(node.inputs[0])
    p = producers.get(node.inputs[0])
    return src.const or (p is not None and p.op_type == "QuantizeLinear")


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
