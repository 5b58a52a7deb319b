"""The graph the hardware map works on: nodes in execution order, each with its operator, its
operator version, its tensors' shapes and data types, and whether a converter would fold it away.

Two readers make one shape: :func:`read_onnx` (an ONNX graph, shapes from ONNX shape inference)
and :func:`read_tflite` (a .tflite file's first subgraph, through LiteRT's flatbuffer schema).
Everything downstream — rules, partitions, costs, pre-flight — reads only this module's types."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import BadInput

if TYPE_CHECKING:
    from onnx import ModelProto

Dim = int | str | None

# ONNX TensorProto element types -> the short names rules use
ONNX_DTYPES = {1: "fp32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
               9: "bool", 10: "fp16", 11: "fp64", 12: "uint32", 13: "uint64", 16: "bf16", 17: "fp8", 18: "fp8",
               19: "fp8", 20: "fp8", 21: "uint4", 22: "int4", 23: "fp4"}
ITEMSIZE = {"fp32": 4, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "int32": 4, "int64": 8, "bool": 1,
            "fp16": 2, "fp64": 8, "uint32": 4, "uint64": 8, "bf16": 2, "fp8": 1, "uint4": 0.5, "int4": 0.5,
            "fp4": 0.5, "string": 8}
# TFLite TensorType enum -> the same names
TFLITE_DTYPES = {0: "fp32", 1: "fp16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
                 9: "int8", 10: "fp64", 12: "uint64", 15: "uint32", 16: "uint16", 17: "int4"}
QUANTIZED = {"int8", "uint8", "int16", "uint16", "int4", "uint4"}
# Ops whose outputs carry no compute of their own (the converters fold or elide them).
SHAPE_ONLY_OUTPUT = {"Shape", "Size"}
# Ops whose output type says nothing of what they compute in: indices, shapes, truth values.
INPUT_TYPED = {"Shape", "Size", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "ArgMax", "ArgMin",
               "NonZero", "IsNaN", "IsInf", "Not", "And", "Or", "Xor", "Cast"}


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str | None  # fp32, int8, ... (None: unknown after shape inference)
    shape: tuple[Dim, ...] | None  # None: rank unknown
    const: bool = False  # an initializer, a Constant's output, or folded at conversion

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def dynamic(self) -> bool:
        """Unknown rank or any dimension that is not a fixed positive size."""
        return self.shape is None or any(not (isinstance(d, int) and d > 0) for d in self.shape)

    def nbytes(self, fill: int = 1) -> int:
        """Bytes of the tensor, symbolic dims counted as ``fill`` (batch 1 by default)."""
        if self.shape is None:
            return 0
        n = 1
        for d in self.shape:
            n *= d if isinstance(d, int) and d > 0 else fill
        return int(n * ITEMSIZE.get(self.dtype or "fp32", 4))


@dataclasses.dataclass
class Node:
    index: int
    name: str
    op: str  # "Conv", "com.microsoft:Gelu", "CONV_2D"
    version: int  # the operator version (ONNX since-version; TFLite op version)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    folded: bool = False  # constant-folded by converters: takes no unit
    dtype: str | None = None  # the data type it computes in (int8 for a node between DequantizeLinear/Q pairs)

    @property
    def domain(self) -> str:
        return self.op.split(":", 1)[0] if ":" in self.op else ""

    @property
    def op_type(self) -> str:
        return self.op.split(":", 1)[-1]


@dataclasses.dataclass
class Graph:
    name: str
    vocabulary: str  # "onnx" or "tflite": the operator names its nodes use
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    opsets: dict[str, int] = dataclasses.field(default_factory=dict)  # ONNX: domain -> opset version
    values: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # small constants (Clip bounds, axes)
    notes: list[str] = dataclasses.field(default_factory=list)  # what the reader could not work out

    def tensor(self, name: str) -> Tensor:
        return self.tensors.get(name) or Tensor(name, None, None)

    def data_inputs(self, node: Node) -> list[Tensor]:
        """The node's non-constant inputs (what flows between units)."""
        return [self.tensor(n) for n in node.inputs if n and not self.tensor(n).const]

    def producers(self) -> dict[str, Node]:
        """Tensor name -> the node that makes it (computed once; the graph's nodes do not change)."""
        if "_producers" not in self.__dict__:
            self.__dict__["_producers"] = {out: n for n in self.nodes for out in n.outputs if out}
        return self.__dict__["_producers"]

    def consumers(self) -> dict[str, list[Node]]:
        """Tensor name -> the nodes that read it (computed once)."""
        if "_consumers" not in self.__dict__:
            found: dict[str, list[Node]] = {}
            for n in self.nodes:
                for name in n.inputs:
                    if name:
                        found.setdefault(name, []).append(n)
            self.__dict__["_consumers"] = found
        return self.__dict__["_consumers"]

    @property
    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if not n.folded]

    @property
    def dynamic_inputs(self) -> list[Tensor]:
        return [self.tensor(n) for n in self.inputs if self.tensor(n).dynamic]


# -- ONNX ----------------------------------------------------------------------------------------
def _dims(type_proto: Any) -> tuple[Dim, ...] | None:
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)


def _value_tensor(value_info: Any, const: bool = False) -> Tensor:
    tt = value_info.type.tensor_type
    dtype = ONNX_DTYPES.get(tt.elem_type) if value_info.type.HasField("tensor_type") else None
    shape = _dims(value_info.type) if value_info.type.HasField("tensor_type") else None
    return Tensor(value_info.name, dtype, shape, const)


def fix_input_shapes(model: ModelProto, shapes: dict[str, tuple[int | str, ...]]) -> None:
    """Pin the named graph inputs to fixed shapes (in place), like a static export would; a dim
    given as a name stays symbolic under that name (a partly static export)."""
    known = {i.name: i for i in model.graph.input}
    for name, dims in shapes.items():
        if name not in known:
            raise BadInput(f"--shape names input {name!r}, which the model does not have; "
                           f"its inputs: {', '.join(known) or 'none'}")
        shape = known[name].type.tensor_type.shape
        if len(shape.dim) != len(dims):
            raise BadInput(f"--shape {name}: the input has rank {len(shape.dim)}, the shape given has {len(dims)}")
        for d, size in zip(shape.dim, dims, strict=True):
            if isinstance(size, str):
                d.ClearField("dim_value")
                d.dim_param = size
            else:
                d.ClearField("dim_param")
                d.dim_value = int(size)


def read_onnx(model: ModelProto | str | Path, shapes: dict[str, tuple[int | str, ...]] | None = None,
              name: str | None = None) -> Graph:
    """The graph of an ONNX model (a path or a proto; weights are not needed)."""
    import onnx

    if isinstance(model, str | Path):
        from edgeship.core.onnx_file import load

        label = name or Path(model).name
        model = load(model, load_weights=False, check=False)
    else:
        label = name or (model.graph.name or "model")
        model = onnx.ModelProto.FromString(model.SerializeToString())  # never edit the caller's proto
    if shapes:
        fix_input_shapes(model, shapes)
    notes: list[str] = []
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises assorted errors on graphs it cannot type; the map goes on
        notes.append(f"ONNX shape inference failed ({type(exc).__name__}); shapes and data types are unknown")
        inferred = model
    g = inferred.graph
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    tensors: dict[str, Tensor] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        tensors[vi.name] = _value_tensor(vi)
    for init in g.initializer:
        tensors[init.name] = Tensor(init.name, ONNX_DTYPES.get(init.data_type), tuple(init.dims), const=True)
    nodes = [_onnx_node(i, n, opsets) for i, n in enumerate(g.node)]
    inits = {i.name for i in g.initializer}
    graph = Graph(label, "onnx", nodes, tensors, tuple(i.name for i in g.input if i.name not in inits),
                  tuple(o.name for o in g.output), opsets, _small_constants(g), notes)
    _fold_constants(graph)
    _effective_dtypes(graph)
    return graph


def _small_constants(g: Any, limit: int = 16) -> dict[str, list[float]]:
    """Values of the small constants (initializers and Constant outputs of at most ``limit``
    elements) that rules and lowering read: Clip bounds, Pad modes, axes."""
    from onnx import numpy_helper
    from onnx.external_data_helper import uses_external_data

    found: dict[str, list[float]] = {}
    tensors = [(t.name, t) for t in g.initializer]
    tensors += [(n.output[0], a.t) for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    for name, t in tensors:
        # external data is never read here: the map needs no weights (and follows no file paths)
        if math.prod(t.dims) <= limit and not uses_external_data(t):
            try:
                found[name] = [float(v) for v in numpy_helper.to_array(t).ravel()]
            except (ValueError, TypeError):  # external data not loaded, strings: not a value we need
                continue
    return found


def _attr_value(a: Any) -> Any:
    import onnx

    if a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
        return "<subgraph>"
    if a.type == onnx.AttributeProto.TENSOR:
        return "<tensor>"
    value = onnx.helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


def _since_version(op_type: str, domain: str, opsets: dict[str, int]) -> int:
    import onnx

    opset = opsets.get(domain or "ai.onnx", 1)
    try:
        return onnx.defs.get_schema(op_type, opset, domain).since_version
    except onnx.defs.SchemaError:  # a custom or newer op: its domain's opset is all we know
        return opset


def _onnx_node(index: int, n: Any, opsets: dict[str, int]) -> Node:
    domain = "" if n.domain in ("", "ai.onnx") else n.domain
    op = f"{domain}:{n.op_type}" if domain else n.op_type
    attrs = {a.name: _attr_value(a) for a in n.attribute}
    return Node(index, n.name or f"{n.op_type}_{index}", op, _since_version(n.op_type, n.domain, opsets),
                tuple(n.input), tuple(n.output), attrs)


def _fold_constants(graph: Graph) -> None:
    """Mark what every converter folds: Constant nodes, nodes whose inputs are all constant, and
    Shape/Size of tensors whose shapes are static. Their outputs become constants."""
    for node in graph.nodes:
        ins = [graph.tensor(i) for i in node.inputs if i]
        foldable = node.op == "Constant" or (
            node.op in SHAPE_ONLY_OUTPUT and ins and not ins[0].dynamic) or (
            bool(ins) and all(t.const for t in ins) and not any(v == "<subgraph>" for v in node.attrs.values()))
        if foldable:
            node.folded = True
            for out in node.outputs:
                t = graph.tensor(out)
                graph.tensors[out] = dataclasses.replace(t, const=True)


def _effective_dtypes(graph: Graph) -> None:
    """The data type each node computes in: quantized when its data inputs come from
    DequantizeLinear of int8/int16/int4 tensors (QDQ graphs run integer kernels), else its first
    data tensor's type."""
    producers = graph.producers()
    for node in graph.nodes:
        if node.op in ("QuantizeLinear", "DequantizeLinear", "com.microsoft:QuantizeLinear",
                       "com.microsoft:DequantizeLinear"):
            side = node.outputs[0] if node.op_type == "QuantizeLinear" else node.inputs[0]
            node.dtype = graph.tensor(side).dtype
            continue
        if node.op_type.startswith("QLinear") or node.op_type in ("ConvInteger", "MatMulInteger"):
            node.dtype = graph.tensor(node.inputs[0]).dtype
            continue
        if node.op_type == "MatMulNBits":
            node.dtype = "int4"
            continue
        quant = []
        for name in node.inputs:
            p = producers.get(name)
            if p is not None and p.op_type == "DequantizeLinear":
                quant.append(graph.tensor(p.inputs[0]).dtype)
        if quant and all(q in QUANTIZED for q in quant):
            node.dtype = quant[0]
            continue
        # what it computes in: its output's type (a Gather of an fp32 table by int64 indices is fp32),
        # except for ops whose output is an index, a shape or a truth value
        first = INPUT_TYPED if node.op_type in INPUT_TYPED else ()
        ins = [graph.tensor(n) for n in node.inputs if n and not graph.tensor(n).const]
        outs = [graph.tensor(n) for n in node.outputs if n]
        order = [*ins, *outs] if first else [*outs, *ins]
        node.dtype = next((t.dtype for t in order if t.dtype), None)


# -- TFLite --------------------------------------------------------------------------------------
def read_tflite(path: str | Path, name: str | None = None) -> Graph:
    """The first subgraph of a .tflite file, with op versions and tensor shape signatures."""
    from edgeship.core.registry import require

    schema = require("ai_edge_litert.schema_py_generated", "tflite", "ai-edge-litert")
    p = Path(path)
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(p.read_bytes()), 0)
    except Exception as exc:  # flatbuffers raises assorted errors on other files
        raise BadInput(f"{str(p)!r} is not a readable .tflite file ({type(exc).__name__}); re-convert it") from None
    if not model.subgraphs:
        raise BadInput(f"{str(p)!r} has no subgraph; re-convert it")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.subgraphs[0]
    tensors: dict[str, Tensor] = {}
    for i, t in enumerate(sub.tensors or []):
        sig = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
        shape = tuple(int(d) if d >= 0 else None for d in (sig if sig is not None else []))
        buf = model.buffers[t.buffer] if model.buffers and t.buffer < len(model.buffers) else None
        const = bool(buf is not None and ((buf.data is not None and len(buf.data)) or buf.size))
        label = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else (t.name or str(i))
        tensors[str(i)] = Tensor(label, TFLITE_DTYPES.get(t.type), shape, const)  # keyed by index, named
    nodes = []
    for i, op in enumerate(sub.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        opname = names.get(builtin, f"BUILTIN_{builtin}")
        if opname == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            opname = f"CUSTOM:{custom}"
        ins = tuple(str(x) if x >= 0 else "" for x in (op.inputs if op.inputs is not None else []))
        outs = tuple(str(x) for x in (op.outputs if op.outputs is not None else []))
        node = Node(i, f"{i}:{opname}", opname, int(code.version or 1), ins, outs)
        data = [tensors[x] for x in ins if x and not tensors[x].const] or [tensors[x] for x in outs]
        node.dtype = next((t.dtype for t in data if t.dtype), None)
        nodes.append(node)
    return Graph(name or p.name, "tflite", nodes, tensors,
                 tuple(str(x) for x in (sub.inputs if sub.inputs is not None else [])),
                 tuple(str(x) for x in (sub.outputs if sub.outputs is not None else [])))


def topological(nodes: Iterable[Node], graph: Graph) -> list[Node]:
    """The nodes in a dependency order (ONNX and TFLite files already are; kept stable)."""
    order = list(nodes)
    made = {out for n in order for out in n.outputs}
    done: set[str] = set()
    out: list[Node] = []
    pending = order
    while pending:
        rest = []
        for n in pending:
            if all(i not in made or i in done for i in n.inputs if i):
                out.append(n)
                done.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle or a subgraph reference: keep the file's order
            out.extend(rest)
            break
        pending = rest
    return out
