"""torch → ONNX: export, validate, simplify, and prove parity on ONNX Runtime.

``export(source, out)`` takes a source spec (``zoo:NAME``, ``net.py:build``, ``.pt2``, a Hugging Face
folder, an ``.onnx`` file), a :class:`TorchSource` or a :class:`Model`, and writes one ONNX file:

1. the ``torch.export``-based (dynamo) exporter, falling back to the legacy TorchScript exporter when
   it fails or its graph fails the checker (``exporter="auto"``); which one ran, and why, is recorded;
2. one file (weights inline) below 2 GB; unique output names (a requested name that an internal value
   already uses is freed by renaming the internal value); ``onnx.checker`` and shape inference;
3. optional onnxslim, kept only when it keeps parity;
4. parity: PyTorch eager vs ONNX Runtime on real inputs (the data given, else the source's held-out
   data, else its examples plus synthetic ones), per output, against ``parity_gates``.

The file is written atomically. A parity failure raises :class:`GateFailed` naming the worst output,
but keeps the file (it is a valid model worth inspecting) with its sidecar recording the failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from edgeship.core.artifact import IOSpec, Model, Step, now
from edgeship.core.atomic import atomic_path, check_output_path
from edgeship.core.config import Config
from edgeship.core.errors import BadInput, GateFailed
from edgeship.core.registry import Registry
from edgeship.zoo.base import TorchSource

# Opset 18 is the lowest the dynamo exporter emits natively (lower ones go through a version converter
# that may fail), and the tools after export take it: onnxruntime.quantization, onnx2tf, OpenVINO.
DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 11, 23
# FP32 export should match eager PyTorch to float rounding; these gates say so on every output.
DEFAULT_PARITY_GATES = ("cosine_min>=0.99999", "rel_err_max<=1e-4")
_AXIS_RE = re.compile(r"^(?P<input>[^:]+):(?P<axis>\d+)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$")
_TMP_OUTPUT = "__edgeship_output_{}"

Progress = Callable[[str], None]


def parse_dynamic_axis(text: str) -> tuple[str, int, str]:
    """``"input_ids:1:sequence"`` → ``("input_ids", 1, "sequence")``; the name defaults to ``INPUT_dimAXIS``."""
    m = _AXIS_RE.match(text.strip())
    if not m:
        raise BadInput(f"--dynamic-axis {text!r}: expected INPUT:AXIS:NAME, for example input_ids:1:sequence")
    axis = int(m["axis"])
    name = m["name"] or ("batch" if axis == 0 else f"{m['input']}_dim{axis}")
    return m["input"], axis, name


@dataclasses.dataclass(frozen=True)
class ExportConfig(Config):
    """How to export. ``dynamic_axes`` items are ``INPUT:AXIS:NAME``; they add to what the source declares."""

    kind: ClassVar[str] = "export"

    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = False
    dynamic_axes: tuple[str, ...] = ()
    simplify: bool = True
    exporter: Literal["auto", "dynamo", "legacy"] = "auto"
    parity: bool = True
    parity_gates: tuple[str, ...] = DEFAULT_PARITY_GATES
    parity_samples: int = 32

    def validate(self) -> None:
        if not isinstance(self.opset, int) or isinstance(self.opset, bool) or not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise BadInput(f"opset {self.opset!r}: choose an integer from {MIN_OPSET} to {MAX_OPSET} "
                           f"(default {DEFAULT_OPSET})")
        if self.exporter not in ("auto", "dynamo", "legacy"):
            raise BadInput(f"exporter {self.exporter!r}: choose auto, dynamo or legacy")
        for item in self.dynamic_axes:
            parse_dynamic_axis(item)
        if not isinstance(self.parity_samples, int) or self.parity_samples < 1:
            raise BadInput(f"parity_samples {self.parity_samples!r}: give a positive number of samples")
        from edgeship.check.gates import parse_gates

        parse_gates(self.parity_gates)


# -- exporters, by name ---------------------------------------------------------------------------
Exporter = Callable[[TorchSource, dict[str, dict[int, str]], int, list[str]], Any]
EXPORTERS: Registry[Exporter] = Registry("exporter")
AUTO_ORDER = ("dynamo", "legacy")


@EXPORTERS.register("dynamo")
def export_dynamo(source: TorchSource, axes: dict[str, dict[int, str]], opset: int, output_names: list[str]) -> Any:
    """``torch.onnx.export(dynamo=True)``: torch.export graph capture, dynamic dims as ``torch.export.Dim``."""
    import torch

    dims: dict[str, Any] = {}

    def dim(name: str) -> Any:
        # One Dim object per name: inputs sharing "batch" or "sequence" must agree, and torch checks it.
        if name not in dims:
            dims[name] = torch.export.Dim(name)
        return dims[name]

    dynamic_shapes = None
    if axes:
        dynamic_shapes = tuple({a: dim(n) for a, n in axes[i].items()} if i in axes else None
                               for i in source.example_inputs)
    program = torch.onnx.export(source.module, tuple(source.example_inputs.values()), dynamo=True,
                                opset_version=opset, input_names=list(source.example_inputs),
                                output_names=output_names, dynamic_shapes=dynamic_shapes, external_data=False,
                                verbose=False, optimize=True)
    return program.model_proto


@EXPORTERS.register("legacy")
def export_legacy(source: TorchSource, axes: dict[str, dict[int, str]], opset: int, output_names: list[str]) -> Any:
    """``torch.onnx.export(dynamo=False)``: the TorchScript tracer (bakes Python control flow into the graph)."""
    import onnx
    import torch

    # Axes are declared for inputs and, optionally, for outputs under the source's own output names.
    input_axes = {k: dict(v) for k, v in axes.items() if k in source.example_inputs}
    output_axes = {tmp: dict(axes[name]) for name, tmp in zip(source.output_names, output_names, strict=False)
                   if name in axes}
    with tempfile.TemporaryDirectory(prefix="edgeship-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(source.module, tuple(source.example_inputs.values()), str(path), dynamo=False,
                          opset_version=opset, input_names=list(source.example_inputs), output_names=output_names,
                          dynamic_axes={**input_axes, **output_axes} or None, do_constant_folding=True)
        proto = onnx.load(str(path))  # also reads external data the tracer may write for big models
    # The tracer writes the traced (static) shapes of outputs it was not told about; with dynamic inputs
    # they may be wrong, so they are dropped and shape inference puts the right (symbolic) ones back.
    if input_axes:
        _forget_output_dims(proto, keep=set(output_axes))
    return proto


def _forget_output_dims(proto: Any, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Make output dims unknown (rank kept: the checker wants a shape field), except outputs in ``keep``."""
    for out in proto.graph.output:
        if out.name not in keep and out.type.tensor_type.HasField("shape"):
            for d in out.type.tensor_type.shape.dim:
                d.ClearField("dim_value")
                d.ClearField("dim_param")


# -- the export -----------------------------------------------------------------------------------
def export(source: str | Path | TorchSource | Model, out: str | Path, config: ExportConfig | None = None,
           data: Any = None, *, trust_pickle: bool = False, shapes: dict[str, tuple[int, ...]] | None = None,
           progress: Progress | None = None) -> Model:
    """Export ``source`` to the ONNX file ``out`` and prove parity; returns the Model (sidecar written).

    ``data`` (a data spec or Dataset) feeds the parity check; ``shapes`` fix symbolic dims of synthetic
    data, and give the example inputs of a pickled module (with ``trust_pickle``).
    Raises BadInput for unusable sources or outputs (nothing written), GateFailed when parity fails
    (the file and its sidecar are kept; the exception's ``model`` attribute is the Model).
    """
    config = config or ExportConfig()
    say = progress or (lambda _msg: None)
    out_path = check_output_path(out)
    if out_path.suffix.lower() != ".onnx":
        raise BadInput(f"output {str(out_path)!r} must end in .onnx; name it like model.onnx")
    spec = str(source) if isinstance(source, str | Path) else (
        source.name if isinstance(source, TorchSource) else str(source.path))
    if isinstance(source, str | Path):
        say(f"loading {spec}")
        source = _load(str(source), trust_pickle, shapes)
    t0 = time.perf_counter()
    from edgeship.core.onnx_file import io_spec

    if isinstance(source, Model):
        proto, facts = _from_onnx(source, config, say)
        reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = _ort_reference(source)
        ref_names = source.io.output_names
        prior: tuple[Step, ...] = source.provenance
        task = "other"
    else:
        if len(set(source.output_names)) != len(source.output_names):
            # forward_numpy keys outputs by name: repeated names would hide outputs from parity
            source = dataclasses.replace(source, output_names=unique_names(list(source.output_names)))
        proto, facts = _from_torch(source, config, say)
        reference = source.forward_numpy
        ref_names = list(source.output_names)
        prior = ()
        task = source.task
    pdata: ParityData | None = None
    if config.parity:
        pdata = (_parity_data_onnx(source, config, data, shapes) if isinstance(source, Model)
                 else _parity_data_torch(source, io_spec(proto), config, data))
    candidates = [proto]
    unslimmed = facts.pop("_unslimmed", None)
    if unslimmed is not None:
        candidates.append(unslimmed)
    parity: dict[str, Any] | None = None
    with atomic_path(out_path) as tmp:
        for i, candidate in enumerate(candidates):
            _save_proto(candidate, tmp, out_path.name)
            if pdata is None:
                parity = {"passed": None, "why": "parity check skipped (parity=False)"}
                break
            reference_name = "onnxruntime (source file)" if isinstance(source, Model) else "pytorch eager"
            say(f"parity: {reference_name} vs ONNX Runtime on {len(pdata.feeds)} samples ({pdata.description})")
            parity = _parity(reference, ref_names, tmp, io_spec(candidate), pdata, config, task)
            parity["reference"] = reference_name
            if parity["passed"] or i == len(candidates) - 1:
                break
            # onnxslim broke parity: keep the unsimplified graph if that one passes
            facts["simplified"] = False
            facts["simplify_note"] = f"onnxslim output failed parity ({parity['why']}); kept the unsimplified graph"
    assert parity is not None
    facts["parity"] = parity
    facts["export_time_s"] = round(time.perf_counter() - t0, 3)
    step = Step(stage="export", source=spec, config=config.to_dict(), at=now())
    model = Model.open(out_path)
    model = dataclasses.replace(model, format="onnx", provenance=(*prior, step), facts=facts).save()
    if parity.get("passed") is False:
        worst = parity.get("worst_output")
        hint = ("try --no-simplify" if isinstance(source, Model) else
                "try --exporter legacy or --no-simplify, and look for randomness or data-dependent branches in forward")
        err = GateFailed(f"parity failed for output {worst!r}: {parity['why']}; the exported file is kept at "
                         f"{str(out_path)!r} for inspection ({hint})")
        err.model = model  # type: ignore[attr-defined]
        raise err
    return model


def _load(spec: str, trust_pickle: bool, shapes: dict[str, tuple[int, ...]] | None) -> TorchSource | Model:
    from edgeship.export.sources import load_source

    return load_source(spec, trust_pickle=trust_pickle, shapes=shapes)


def resolve_dynamic_axes(source: TorchSource, config: ExportConfig) -> dict[str, dict[int, str]]:
    """What the source declares, plus ``dynamic_batch`` (axis 0 of every input) and ``dynamic_axes``."""
    axes: dict[str, dict[int, str]] = {k: dict(v) for k, v in source.dynamic_axes.items()}
    return _add_config_axes(axes, {n: t.dim() for n, t in source.example_inputs.items()}, config)


def _add_config_axes(axes: dict[str, dict[int, str]], ranks: dict[str, int],
                     config: ExportConfig) -> dict[str, dict[int, str]]:
    """Add ``dynamic_batch`` and ``dynamic_axes`` to ``axes``, checked against the inputs' ranks."""
    if config.dynamic_batch:
        for name, rank in ranks.items():
            if rank >= 1:
                axes.setdefault(name, {}).setdefault(0, "batch")
    for item in config.dynamic_axes:
        name, axis, dim_name = parse_dynamic_axis(item)
        if name not in ranks:
            raise BadInput(f"--dynamic-axis {item!r}: the model has no input {name!r}; inputs: {', '.join(ranks)}")
        if axis >= ranks[name]:
            raise BadInput(f"--dynamic-axis {item!r}: input {name!r} has {ranks[name]} dims "
                           f"(axes 0..{ranks[name] - 1})")
        axes.setdefault(name, {})[axis] = dim_name
    return axes


def _from_torch(source: TorchSource, config: ExportConfig, say: Progress) -> tuple[Any, dict[str, Any]]:
    import onnx
    import torch

    axes = resolve_dynamic_axes(source, config)
    final_names = unique_names(source.output_names)
    tmp_names = [_TMP_OUTPUT.format(i) for i in range(len(final_names))]
    order = AUTO_ORDER if config.exporter == "auto" else (config.exporter,)
    failures: dict[str, str] = {}
    proto = None
    used = ""
    for name in order:
        say(f"exporting with the {name} exporter (opset {config.opset})")
        try:
            exported = _captured(lambda name=name: EXPORTERS.get(name)(source, axes, config.opset, tmp_names))
            proto = finish_graph(exported, final_names, axes)
            used = name
            break
        except BadInput as exc:
            failures[name] = str(exc)
        except Exception as exc:  # exporters fail in many ways; each is recorded and the next one tried
            failures[name] = _root_cause(exc)
    if proto is None:
        detail = "; ".join(f"{k}: {v}" for k, v in failures.items())
        hint = "try --exporter legacy, " if config.exporter == "dynamo" else ""
        raise BadInput(f"{source.name}: torch → ONNX export failed ({detail[:600]}); {hint}simplify forward "
                       "(tensors in, tensors out, no data-dependent Python branches)")
    facts: dict[str, Any] = {
        "exporter": used,
        "exporter_fallback": ({"from": order[0], "why": failures[order[0]][:500]} if used != order[0] else None),
        "opset": _opset(proto),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in axes.items()},
        "output_names": final_names,
        "source": {"spec": source.name, "task": source.task, "eval_data": source.eval_data,
                   "calib_data": source.calib_data, "gate": list(source.gate), "labels": source.labels},
    }
    return _maybe_simplify(proto, config, facts, say)


def _from_onnx(model: Model, config: ExportConfig, say: Progress) -> tuple[Any, dict[str, Any]]:
    """An ONNX source: validated, dynamic axes applied to its inputs, checked, inferred, simplified."""
    import onnx

    from edgeship.core import onnx_file

    say(f"reading {model.path}")
    proto = onnx_file.load(model.path)
    axes = _add_config_axes({}, {t.name: len(t.shape) for t in model.io.inputs}, config)
    if axes:
        for inp in proto.graph.input:
            for axis, dim_name in axes.get(inp.name, {}).items():
                inp.type.tensor_type.shape.dim[axis].dim_param = dim_name
        # Shapes recorded for the static inputs no longer hold: let shape inference recompute them.
        del proto.graph.value_info[:]
        _forget_output_dims(proto)
    proto = finish_graph(proto, [o.name for o in proto.graph.output], axes)
    facts: dict[str, Any] = {
        "exporter": "onnx-passthrough",
        "exporter_fallback": None,
        "opset": _opset(proto),
        "onnx": onnx.__version__,
        "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in axes.items()},
        "output_names": [o.name for o in proto.graph.output],
        "source": {"spec": str(model.path)},
    }
    if config.opset != _opset(proto):
        facts["opset_note"] = f"ONNX sources keep their opset ({_opset(proto)}); --opset applies to torch sources"
    return _maybe_simplify(proto, config, facts, say)


def _maybe_simplify(proto: Any, config: ExportConfig, facts: dict[str, Any], say: Progress) -> tuple[Any, dict]:
    facts["simplified"] = False
    if not config.simplify:
        facts["simplify_note"] = "disabled"
        return proto, facts
    say("simplifying with onnxslim")
    try:
        import onnxslim

        slim = _captured(lambda: onnxslim.slim(_copy(proto)))
        slim = finish_graph(slim, [o.name for o in proto.graph.output], {}, rename=False)
    except Exception as exc:  # a simplifier failure never fails the export: the unsimplified graph is fine
        facts["simplify_note"] = f"onnxslim failed ({type(exc).__name__}: {_first_line(exc)}); kept the exported graph"
        return proto, facts
    same_io = ([i.name for i in slim.graph.input] == [i.name for i in proto.graph.input]
               and [o.name for o in slim.graph.output] == [o.name for o in proto.graph.output])
    if not same_io:
        facts["simplify_note"] = "onnxslim changed the inputs or outputs; kept the exported graph"
        return proto, facts
    facts["simplified"] = True
    facts["nodes"] = {"exported": len(proto.graph.node), "simplified": len(slim.graph.node)}
    facts["_unslimmed"] = proto
    return slim, facts


# -- graph finishing ------------------------------------------------------------------------------
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


def finish_graph(proto: Any, output_names: list[str], axes: dict[str, dict[int, str]], rename: bool = True) -> Any:
    """Rename outputs (freeing clashing internal names), put our dim names on the inputs, then check and
    infer shapes. Raises BadInput when the graph fails the checker."""
    import onnx

    if rename:
        rename_outputs(proto, output_names)
        _name_dims(proto, axes)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise BadInput(f"the exported graph fails the ONNX checker: {_first_line(exc)}") from None
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # inference is a help for later tools, not a requirement
        inferred = proto
    return inferred


def _all_graphs(graph: Any) -> list[Any]:
    out = [graph]
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                out.extend(_all_graphs(attr.g))
            for g in attr.graphs:
                out.extend(_all_graphs(g))
    return out


def _value_names(proto: Any) -> set[str]:
    names: set[str] = set()
    for g in _all_graphs(proto.graph):
        for node in g.node:
            names.update(node.input)
            names.update(node.output)
        names.update(i.name for i in g.initializer)
        names.update(v.name for v in (*g.input, *g.output, *g.value_info))
    names.discard("")
    return names


def _rename_value(proto: Any, old: str, new: str) -> None:
    for g in _all_graphs(proto.graph):
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


def rename_outputs(proto: Any, names: list[str]) -> None:
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
        taken = _value_names(proto)
        if new in taken:
            k = 1
            while f"{new}__{k}" in taken:
                k += 1
            _rename_value(proto, new, f"{new}__{k}")
        _rename_value(proto, current, new)


def _name_dims(proto: Any, axes: dict[str, dict[int, str]]) -> None:
    """Exporters may name dynamic dims after their own symbols (``s77``); use the declared names."""
    mapping: dict[str, str] = {}
    for inp in proto.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for axis, name in axes.get(inp.name, {}).items():
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != name:
                mapping[dims[axis].dim_param] = name
    if not mapping:
        return
    for g in _all_graphs(proto.graph):
        for v in (*g.input, *g.output, *g.value_info):
            for d in v.type.tensor_type.shape.dim:
                if d.dim_param in mapping:
                    d.dim_param = mapping[d.dim_param]


def _opset(proto: Any) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _copy(proto: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return copy


def _save_proto(proto: Any, tmp: Path, final_name: str) -> None:
    """One file below 2 GB; above, weights go to FINAL.onnx.data beside it (protobuf's limit)."""
    import onnx

    if proto.ByteSize() < 2**31 - 1:
        onnx.save_model(proto, str(tmp))
    else:
        onnx.save_model(_copy(proto), str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=final_name + ".data")


# -- parity ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class ParityData:
    feeds: list[dict[str, np.ndarray]]
    description: str
    labels: np.ndarray | None = None  # one per row, when the data has them: accuracy is recorded too


def _parity_data_torch(source: TorchSource, io_spec_: IOSpec, config: ExportConfig, data: Any) -> ParityData:
    from edgeship.core.data import load_data

    spec = data if data is not None else source.eval_data
    if spec is not None:
        ds = load_data(spec, io_spec_, limit=config.parity_samples)
        return ParityData(ds.samples, ds.name, ds.labels)
    feeds: list[dict[str, np.ndarray]] = [
        {k: np.asarray(v) for k, v in f.items()} for f in source.extra.get("parity_feeds") or []]
    feeds = feeds[:config.parity_samples]
    example = {k: v.detach().cpu().numpy() for k, v in source.example_inputs.items()}
    desc = "example inputs + synthetic" if not feeds else "example text + example inputs + synthetic"
    if len(feeds) < config.parity_samples:
        feeds.append(example)
    feeds.extend(_synthetic_like(example, io_spec_, config.parity_samples - len(feeds)))
    return ParityData(feeds, desc)


def _synthetic_like(example: dict[str, np.ndarray], io_spec_: IOSpec, n: int) -> list[dict[str, np.ndarray]]:
    """Random inputs shaped like the example (batch 2 where the batch is dynamic), floats with the example's
    mean and spread, integers within the example's range (token ids, class indices stay valid)."""
    rng = np.random.default_rng(0)
    dynamic_batch = all(
        t.shape and not isinstance(t.shape[0], int) for t in io_spec_.inputs if t.name in example)
    out = []
    for i in range(max(0, n)):
        sample = {}
        for name, ex in example.items():
            shape = list(ex.shape)
            if dynamic_batch and shape and i % 2 == 0:
                shape[0] = 2
            if ex.dtype.kind == "f":
                std = float(ex.std()) if ex.size > 1 and float(ex.std()) > 0 else 1.0
                sample[name] = (rng.standard_normal(shape) * std + float(ex.mean())).astype(ex.dtype)
            elif ex.dtype.kind in "iu":
                lo, hi = int(ex.min()), int(ex.max())
                sample[name] = rng.integers(lo, hi + 1, shape).astype(ex.dtype)
            else:
                sample[name] = np.resize(ex, shape).astype(ex.dtype)
        out.append(sample)
    return out


def _parity_data_onnx(model: Model, config: ExportConfig, data: Any,
                      shapes: dict[str, tuple[int, ...]] | None) -> ParityData:
    from edgeship.core.data import load_data

    ds = load_data(data if data is not None else "data:synthetic", model.io, shapes=shapes,
                   limit=config.parity_samples)
    return ParityData(ds.samples, ds.name, ds.labels)


def _ort_reference(model: Model) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    from edgeship.targets.base import runner_for

    runner = runner_for(model)
    return runner.infer


def _parity(reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], ref_names: list[str], path: Path,
            io_spec_: IOSpec, pdata: ParityData, config: ExportConfig, task: str) -> dict:
    """Reference vs ONNX Runtime on every sample, metrics per output, ``parity_gates`` on each."""
    from edgeship.check.gates import evaluate_gates, parse_gates
    from edgeship.check.metrics import output_metrics
    from edgeship.targets.base import runner_for

    out_names = io_spec_.output_names
    refs: dict[str, list[np.ndarray]] = {n: [] for n in out_names}
    cands: dict[str, list[np.ndarray]] = {n: [] for n in out_names}
    # All reference runs first, then all ONNX Runtime runs: interleaved, ORT's spinning worker threads
    # starve PyTorch's (measured 1.5 s instead of 30 ms per EfficientNet sample on 2 cores).
    with _single_thread_torch():
        ref_outputs = [reference(feed) for feed in pdata.feeds]
    for ref in ref_outputs:
        # Outputs correspond by position: names may have been made unique on the ONNX side.
        for ref_name, name in zip(ref_names, out_names, strict=True):
            refs[name].append(np.asarray(ref[ref_name]))
    with runner_for(Model(path, "onnx", io_spec_)) as runner:
        for feed in pdata.feeds:
            got = runner.infer(feed)
            for name in out_names:
                cands[name].append(np.asarray(got[name]))
    gates = parse_gates(config.parity_gates)
    # top-1 agreement means something for classifiers only; None lets the metric judge by shape
    classifier = {"classification": True, "embedding": False}.get(task)
    per_output: dict[str, dict[str, Any]] = {}
    failing: list[tuple[float, float, str, str]] = []
    for name in out_names:
        try:
            metrics = output_metrics(refs[name], cands[name], labels=pdata.labels, classifier=classifier)
        except ValueError as exc:  # shapes differ: the ONNX graph computes something else
            metrics = {"cosine_min": 0.0, "rel_err_max": float("inf"), "error": str(exc)}
            passed, why = False, f"output shapes differ from PyTorch ({exc})"
        else:
            passed, why = evaluate_gates(gates, metrics)
        metrics = {**metrics, "passed": passed, "why": why}
        per_output[name] = metrics
        if not passed:
            failing.append((metrics.get("cosine_min", 0.0), -metrics.get("rel_err_max", 0.0), name, why))
    worst = min(failing)[2] if failing else None
    return {
        "passed": not failing,
        "why": next(f[3] for f in failing if f[2] == worst) if failing else "all outputs within "
               + ", ".join(str(g) for g in gates),
        "worst_output": worst,
        "gates": [str(g) for g in gates],
        "data": pdata.description,
        "samples": len(pdata.feeds),
        "outputs": per_output,
    }


@contextlib.contextmanager
def _single_thread_torch() -> Any:
    """PyTorch on one thread for the reference runs: parity needs correctness, not speed, and OpenMP's
    barriers collapse on a busy machine (EfficientNet-Lite0 eager: 0.97 s per image with 2 threads vs
    0.05 s with 1, load average 7 on 2 cores). The previous setting is restored."""
    import sys

    torch = sys.modules.get("torch")  # only a torch source has imported it; ONNX sources never need it
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _captured(fn: Callable[[], Any]) -> Any:
    """Run an exporter with its Python-level chatter (graph dumps, progress prints) kept off our stdout,
    so ``--json`` output stays clean; the chatter is dropped (the failure itself is reported)."""
    import logging
    import warnings

    sink = io.StringIO()
    loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            return fn()
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# torch's exporters log warnings (missing torchvision ops, symbolic-shape notes) that are not ours to show.
_NOISY_LOGGERS = ("torch.onnx", "torch.fx", "torch._dynamo", "torch.export", "torch._export", "onnxscript")


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's first line: TorchExportError's own message only says which step failed."""
    outer = f"{type(exc).__name__}: {_first_line(exc)}"
    inner = exc
    seen = 0
    while (inner.__cause__ or inner.__context__) is not None and seen < 10:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
        seen += 1
    if inner is exc:
        return outer
    return f"{type(exc).__name__} ({type(inner).__name__}: {_first_line(inner)})"


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
