"""Op-support rules as data: one YAML file per accelerator under ``rules/``, each rule citing the
public document (and its version) it was read from.

A rule file::

    name: tflite-gpu            # the rule set's id (the file's stem, with - for _)
    title: LiteRT GPU delegate   # how messages name the unit
    version: 1                   # the rules' own version: bump when a rule changes
    vocabulary: tflite           # operator names: "onnx" (Op or domain:Op) or "tflite" (builtin names)
    sources:                     # what the rules cite: a title, a URL and the version read
      builder: {title: ..., url: ..., version: ...}
    cite: builder                # the default source of every rule below
    limits: {dtypes: [fp32, fp16], max_rank: 4}   # for every op unless the op says otherwise
    ops:
      CONV_2D: {}
      DEPTHWISE_CONV_2D: {versions: [1, 2], cite: doc}
    unsupported:                 # ops a document names as unsupported, and why
      GATHER_ND: {why: not in the delegate's parser list}

An op rule may say: ``min_version``/``max_version`` (ONNX since-version range), ``versions`` (the
TFLite op versions taken), ``dtypes``, ``min_rank``/``max_rank`` (of the first data input),
``ranks`` (allowed ranks), ``static_shapes``, ``const_inputs`` (input positions that must be
constants), ``attrs`` (allowed values per attribute; an absent attribute takes its default),
``const_values`` (the values a constant input may have, by position), ``max_outputs``,
``view_target`` (limits on the shape a Reshape/Flatten/Squeeze/Unsqueeze makes:
``max_symbolic`` dims computed at run time from a dynamic dim, ``max_inferred`` dims left to -1),
``note`` and ``cite``. :func:`load_rules` refuses unknown keys and citations that resolve to no
source, so a rule without its document cannot ship.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.errors import BadInput

if TYPE_CHECKING:
    from edgeship.targets.hwmap.graph import Graph, Node

RULES_DIR = Path(__file__).parent / "rules"
OP_KEYS = {"min_version", "max_version", "versions", "dtypes", "min_rank", "max_rank", "ranks", "static_shapes",
           "const_inputs", "const_values", "attrs", "max_outputs", "view_target", "note", "cite", "aten"}
VIEW_TARGET_KEYS = {"max_symbolic", "max_inferred"}
LIMIT_KEYS = {"dtypes", "max_rank", "static_shapes", "cite", "note"}
FILE_KEYS = {"name", "title", "version", "vocabulary", "sources", "cite", "limits", "ops", "unsupported", "unit",
             "about", "unlisted"}
DTYPES = {"fp32", "fp16", "bf16", "fp64", "fp8", "fp4", "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32",
          "uint32", "int64", "uint64", "bool", "string"}


@dataclasses.dataclass(frozen=True)
class Source:
    id: str
    title: str
    url: str
    version: str

    def cite(self) -> str:
        return f"{self.title} ({self.version}): {self.url}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # why not, in words a user can act on
    cite: str = ""  # the source id the deciding rule came from
    known: bool = True  # False: no rule names this op at all


@dataclasses.dataclass(frozen=True)
class OpRule:
    op: str
    spec: dict[str, Any]
    cite: str

    def get(self, key: str, default: Any = None) -> Any:
        return self.spec.get(key, default)


@dataclasses.dataclass(frozen=True)
class RuleSet:
    name: str
    title: str
    version: int
    vocabulary: str
    unit: str  # NPU, GPU, CPU, TPU, MCU: what kind of unit runs what these rules accept
    sources: dict[str, Source]
    limits: dict[str, Any]
    ops: dict[str, OpRule]
    unsupported: dict[str, OpRule]
    path: Path
    accepts_unlisted: bool = False  # a catch-all unit (portable kernels, LiteRT's builtin kernels)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def source(self, cite: str) -> Source:
        return self.sources[cite]

    def knows(self, op: str) -> bool:
        return op in self.ops or op in self.unsupported

    # -- deciding ------------------------------------------------------------------------------
    def check(self, node: Node, graph: Graph, op: str | None = None) -> Verdict:
        """Whether this unit takes ``node`` (as operator ``op``: a lowered builtin for TFLite rules
        applied to an ONNX node; default the node's own op)."""
        op = op or node.op
        if op in self.unsupported:
            rule = self.unsupported[op]
            why = rule.get("why") or "the document lists it as unsupported"
            return Verdict(False, f"{op} is not supported on the {self.title} ({why})", rule.cite)
        rule = self.ops.get(op)
        if rule is None and self.accepts_unlisted:
            rule = OpRule(op, {}, self._default_cite)
        if rule is None:
            return Verdict(False, f"{op} is not among the ops the {self.title} takes", self._default_cite, known=False)
        for check in CHECKS:
            reason = check(self, rule, node, graph, op)
            if reason:
                return Verdict(False, reason, rule.cite)
        return Verdict(True, "", rule.cite)

    @property
    def _default_cite(self) -> str:
        return self.default_cite

    @property
    def default_cite(self) -> str:
        return next(iter(self.sources))

    def limit(self, rule: OpRule, key: str) -> Any:
        return rule.get(key, self.limits.get(key))


# -- the checks a rule can make, in the order they are tried -------------------------------------
def _first_data(node: Node, graph: Graph) -> Any:
    data = graph.data_inputs(node)
    return data[0] if data else (graph.tensor(node.inputs[0]) if node.inputs else None)


def _check_version(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    if op != node.op:  # a lowered builtin: its op version is the converter's choice, not the graph's
        return ""
    lo, hi, allowed = rule.get("min_version"), rule.get("max_version"), rule.get("versions")
    if lo is not None and node.version < lo:
        return f"{op} version {node.version} is older than the {rs.title} takes (from {lo})"
    if hi is not None and node.version > hi:
        return f"{op} version {node.version} is newer than the {rs.title} takes (up to {hi})"
    if allowed is not None and node.version not in allowed:
        return f"{op} version {node.version}; the {rs.title} takes version {', '.join(map(str, allowed))}"
    return ""


def _check_dtype(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    allowed = rs.limit(rule, "dtypes")
    if not allowed or node.dtype is None or node.dtype in allowed:
        return ""
    return f"{op} computes in {node.dtype}; the {rs.title} takes {'/'.join(allowed)}"


def _check_rank(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    t = _first_data(node, graph)
    if t is None or t.rank is None:
        return ""
    hi, lo, ranks = rs.limit(rule, "max_rank"), rule.get("min_rank"), rule.get("ranks")
    if hi is not None and t.rank > hi:
        return f"{op} on a rank-{t.rank} tensor; the {rs.title} takes rank {hi} at most"
    if lo is not None and t.rank < lo:
        return f"{op} on a rank-{t.rank} tensor; the {rs.title} needs rank {lo} or more"
    if ranks is not None and t.rank not in ranks:
        return f"{op} on a rank-{t.rank} tensor; the {rs.title} takes rank {'/'.join(map(str, ranks))} only"
    return ""


def _check_static(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    if not rs.limit(rule, "static_shapes"):
        return ""
    for name in (*node.inputs, *node.outputs):
        t = graph.tensor(name) if name else None
        if t is not None and not t.const and t.dynamic:
            dims = "?" if t.shape is None else ",".join("?" if d is None else str(d) for d in t.shape)
            return f"dynamic shape ({t.name} is [{dims}]): the {rs.title} needs static shapes"
    return ""


def _check_const_inputs(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    for pos in rule.get("const_inputs") or ():
        if pos < len(node.inputs) and node.inputs[pos] and not graph.tensor(node.inputs[pos]).const:
            return f"{op} input {pos} ({node.inputs[pos]}) is computed at run time; the {rs.title} needs it constant"
    return ""


def _check_const_values(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    for pos, allowed in (rule.get("const_values") or {}).items():
        name = node.inputs[int(pos)] if int(pos) < len(node.inputs) else ""
        value = graph.values.get(name) if name else None
        if value is None or len(value) != 1 or value[0] not in allowed:
            shown = "computed or not a scalar" if value is None or len(value) != 1 else f"{value[0]:g}"
            return f"{op} input {pos} is {shown}; the {rs.title} takes {' or '.join(f'{v:g}' for v in allowed)}"
    return ""


def _check_attrs(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    if op != node.op:
        return ""
    for attr, allowed in (rule.get("attrs") or {}).items():
        if attr in node.attrs and node.attrs[attr] not in allowed:
            return f"{op} with {attr}={node.attrs[attr]!r}; the {rs.title} takes {attr} in {allowed}"
    return ""


def _check_outputs(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    most = rule.get("max_outputs")
    used = [o for o in node.outputs if o]
    if most is not None and len(used) > most:
        return f"{op} with {len(used)} outputs; the {rs.title} produces {most}"
    return ""


SYMBOLIC, INFERRED, FIXED = "symbolic", "inferred", "fixed"


def view_target(node: Node, graph: Graph) -> list[str] | None:
    """What each dim of the shape ``node`` reshapes to is, as the PyTorch program it was exported
    from has it: ``fixed`` (an int), ``inferred`` (-1) or ``symbolic`` (computed from a dynamic dim
    at run time); None when the node makes no shape of its own or its rank is unknown.

    A Reshape's shape input is read element by element (a constant, or a Concat of constant pieces
    and computed ones, as exporters build it); a computed element is fixed where shape inference
    found the output dim static. Flatten/Squeeze/Unsqueeze reshape to their output shape."""
    out = graph.tensor(node.outputs[0]) if node.outputs else None
    if out is None or out.shape is None:
        return None
    static = [isinstance(d, int) and d > 0 for d in out.shape]
    if node.op != "Reshape":
        return [FIXED if s else SYMBOLIC for s in static]
    elements = _shape_elements(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    if elements is None or len(elements) != len(static):
        return [FIXED if s else SYMBOLIC for s in static]
    return [INFERRED if e == -1 else FIXED if e is not None or s else SYMBOLIC for e, s in zip(elements, static)]


def _shape_elements(graph: Graph, name: str) -> list[float | None] | None:
    """The elements of a 1-D shape tensor: known constants, None where computed; None if unknown."""
    if name in graph.values:
        return list(graph.values[name])
    producer = graph.producers().get(name)
    if producer is None or producer.op != "Concat":
        t = graph.tensor(name)
        n = t.shape[0] if t.shape and len(t.shape) == 1 and isinstance(t.shape[0], int) else None
        return None if n is None else [None] * n
    out: list[float | None] = []
    for piece in producer.inputs:
        part = _shape_elements(graph, piece)
        if part is None:
            return None
        out.extend(part)
    return out


def _check_view_target(rs: RuleSet, rule: OpRule, node: Node, graph: Graph, op: str) -> str:
    limits = rule.get("view_target")
    dims = view_target(node, graph) if limits else None
    if not dims:
        return ""
    shown = "[" + ", ".join({SYMBOLIC: "?", INFERRED: "-1", FIXED: "n"}[d] for d in dims) + "]"
    symbolic, inferred = dims.count(SYMBOLIC), dims.count(INFERRED)
    if symbolic > limits.get("max_symbolic", len(dims)):
        return (f"dynamic shape: {op} to a shape with {symbolic} dim(s) computed at run time ({shown}); the "
                f"{rs.title} takes static reshapes only")
    if inferred > limits.get("max_inferred", len(dims)):
        return f"{op} to a shape with {inferred} inferred (-1) dims ({shown}): the {rs.title} takes one at most"
    return ""


CHECKS = (_check_version, _check_dtype, _check_static, _check_rank, _check_const_inputs, _check_const_values,
          _check_attrs, _check_outputs, _check_view_target)


# -- loading -------------------------------------------------------------------------------------
def rule_names() -> list[str]:
    return sorted(p.stem.replace("_", "-") for p in RULES_DIR.glob("*.yaml"))


@functools.cache
def load_rules(name: str) -> RuleSet:
    """The rule set ``name`` (a file ``rules/<name>.yaml``, - and _ alike), validated."""
    path = RULES_DIR / f"{name.replace('-', '_')}.yaml"
    if not path.is_file():
        raise BadInput(f"no rule set {name!r}; known: {', '.join(rule_names())}")
    import yaml

    data = yaml.safe_load(path.read_text())
    return parse_rules(data, path)


def parse_rules(data: dict[str, Any], path: Path) -> RuleSet:
    where = path.name

    def fail(msg: str) -> BadInput:
        return BadInput(f"rules {where}: {msg}")

    if not isinstance(data, dict):
        raise fail("not a mapping")
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    sources = {}
    for sid, s in (data.get("sources") or {}).items():
        missing = [k for k in ("title", "url", "version") if not (s or {}).get(k)]
        if missing:
            raise fail(f"source {sid!r} lacks {', '.join(missing)}")
        sources[sid] = Source(sid, str(s["title"]), str(s["url"]), str(s["version"]))
    if not sources:
        raise fail("cites no source")
    default = data.get("cite") or next(iter(sources))
    vocabulary = data.get("vocabulary")
    if vocabulary not in ("onnx", "tflite"):
        raise fail(f"vocabulary {vocabulary!r}; use onnx or tflite")
    limits = dict(data.get("limits") or {})
    if set(limits) - LIMIT_KEYS:
        raise fail(f"unknown limit(s) {', '.join(sorted(set(limits) - LIMIT_KEYS))}")

    def rule(op: str, spec: Any, allowed: set[str]) -> OpRule:
        spec = dict(spec or {})
        bad = set(spec) - allowed
        if bad:
            raise fail(f"{op}: unknown key(s) {', '.join(sorted(bad))}")
        for d in spec.get("dtypes") or ():
            if d not in DTYPES:
                raise fail(f"{op}: unknown dtype {d!r}")
        if set(spec.get("view_target") or {}) - VIEW_TARGET_KEYS:
            raise fail(f"{op}: view_target takes {', '.join(sorted(VIEW_TARGET_KEYS))}")
        cite = spec.get("cite", default)
        if cite not in sources:
            raise fail(f"{op} cites {cite!r}, which is not among its sources ({', '.join(sources)})")
        return OpRule(op, spec, cite)

    for d in limits.get("dtypes") or ():
        if d not in DTYPES:
            raise fail(f"limits: unknown dtype {d!r}")
    if limits.get("cite", default) not in sources:
        raise fail(f"limits cite {limits.get('cite')!r}, which is not a source")
    ops = {op: rule(op, spec, OP_KEYS) for op, spec in (data.get("ops") or {}).items()}
    unsupported = {op: rule(op, spec, {"why", "cite", "note"}) for op, spec in (data.get("unsupported") or {}).items()}
    both = set(ops) & set(unsupported)
    if both:
        raise fail(f"{', '.join(sorted(both))} both supported and unsupported")
    name = data.get("name") or path.stem.replace("_", "-")
    unlisted = data.get("unlisted", "refuse")
    if unlisted not in ("accept", "refuse"):
        raise fail(f"unlisted {unlisted!r}; use accept (a catch-all unit) or refuse")
    return RuleSet(name, str(data.get("title") or name), int(data.get("version") or 0), vocabulary,
                   str(data.get("unit") or "CPU"), sources, limits, ops, unsupported, path, unlisted == "accept")
