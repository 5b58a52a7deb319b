"""ONNX graph helpers that several stages share (the exporter, the quantizers, the targets).

They work on ``onnx.ModelProto`` objects in memory; reading and writing files is ``onnx_file``'s.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from edgeship.core.errors import BadInput

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto


def is_transformer(model: ModelProto) -> bool:
    """A BERT-like encoder: integer token inputs, Softmax attention and LayerNormalization."""
    ops = {n.op_type for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    int_inputs = [i for i in model.graph.input if i.name not in inits and i.type.tensor_type.elem_type in (6, 7)]
    has_norm = bool(ops & {"LayerNormalization", "ReduceMean", "SkipLayerNormalization"})
    return bool(int_inputs) and "Softmax" in ops and has_norm and "MatMul" in ops


def unique_names(names: list[str]) -> list[str]:
    """Requested output names made unique: a repeat gets ``_1``, ``_2``..."""
    seen: set[str] = set()
    out = []
    for n in names:
        cand, k = n, 1
        while cand in seen:
            cand = f"{n}_{k}"
            k += 1
        seen.add(cand)
        out.append(cand)
    return out


def finish_graph(proto: ModelProto, output_names: list[str], axes: dict[str, dict[int, str]],
                 rename: bool = True) -> ModelProto:
    """Rename outputs (freeing clashing internal names), put our dim names on the inputs, then check and
    infer shapes. Raises BadInput when the graph fails the checker."""
    import onnx

    if rename:
        rename_outputs(proto, output_names)
        name_dims(proto, axes)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise BadInput(f"the exported graph fails the ONNX checker: {first_line(exc)}") from None
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # inference is a help for later tools, not a requirement
        inferred = proto
    return inferred


def all_graphs(graph: GraphProto) -> list[GraphProto]:
    out = [graph]
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                out.extend(all_graphs(attr.g))
            for g in attr.graphs:
                out.extend(all_graphs(g))
    return out


def value_names(proto: ModelProto) -> set[str]:
    names: set[str] = set()
    for g in all_graphs(proto.graph):
        for node in g.node:
            names.update(node.input)
            names.update(node.output)
        names.update(i.name for i in g.initializer)
        names.update(v.name for v in (*g.input, *g.output, *g.value_info))
    names.discard("")
    return names


def rename_value(proto: ModelProto, old: str, new: str) -> None:
    for g in all_graphs(proto.graph):
        for node in g.node:
            for seq in (node.input, node.output):
                for i, n in enumerate(seq):
                    if n == old:
                        seq[i] = new
        for t in g.initializer:
            if t.name == old:
                t.name = new
        for v in (*g.input, *g.output, *g.value_info):
            if v.name == old:
                v.name = new


def rename_outputs(proto: ModelProto, names: list[str]) -> None:
    """Give the graph outputs ``names``; an internal value already named so is renamed out of the way
    (the exporter can reuse a name such as ``relu`` for a node and the output, which breaks SSA)."""
    outputs = [o.name for o in proto.graph.output]
    if len(outputs) != len(names):
        raise BadInput(f"the model returns {len(outputs)} outputs but {len(names)} output names were given "
                       f"({', '.join(names)}); give one name per output")
    inputs = {i.name for i in proto.graph.input}
    wanted = [n if n not in inputs else f"{n}_out" for n in names]
    for current, new in zip(outputs, wanted, strict=True):
        if current == new:
            continue
        taken = value_names(proto)
        if new in taken:
            k = 1
            while f"{new}__{k}" in taken:
                k += 1
            rename_value(proto, new, f"{new}__{k}")
        rename_value(proto, current, new)


def name_dims(proto: ModelProto, axes: dict[str, dict[int, str]]) -> None:
    """Exporters may name dynamic dims after their own symbols (``s77``); use the declared names."""
    mapping: dict[str, str] = {}
    for inp in proto.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for axis, name in axes.get(inp.name, {}).items():
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != name:
                mapping[dims[axis].dim_param] = name
    if not mapping:
        return
    for g in all_graphs(proto.graph):
        for v in (*g.input, *g.output, *g.value_info):
            for d in v.type.tensor_type.shape.dim:
                if d.dim_param in mapping:
                    d.dim_param = mapping[d.dim_param]


def forget_output_dims(proto: ModelProto, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Make output dims unknown (rank kept: the checker wants a shape field), except outputs in ``keep``."""
    for out in proto.graph.output:
        if out.name not in keep and out.type.tensor_type.HasField("shape"):
            for d in out.type.tensor_type.shape.dim:
                d.ClearField("dim_value")
                d.ClearField("dim_param")


def opset_of(proto: ModelProto) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def copy_model(proto: ModelProto) -> ModelProto:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return copy


def first_line(exc: BaseException) -> str:
    """An exception's first line without terminal colours, for one-line errors."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
