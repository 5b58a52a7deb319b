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

The steps live in their own modules: ``config`` (ExportConfig), ``torch_export`` (the exporters),
``core.onnx_graph`` (graph surgery), ``parity`` (the check, through ``check.judge``); this module
runs them in order. The file is written atomically. A parity failure raises :class:`GateFailed`
naming the worst output, but keeps the file (it is a valid model worth inspecting) with its sidecar
recording the failure.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import Model, Step, now
from edgeship.core.atomic import atomic_path, check_output_path
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput, GateFailed
from edgeship.core.onnx_file import io_spec, write
from edgeship.core.onnx_graph import (
    copy_model,
    finish_graph,
    first_line,
    forget_output_dims,
    opset_of,
    unique_names,
)
from edgeship.export.config import ExportConfig, parse_dynamic_axis
from edgeship.export.parity import ParityData, check_parity, ort_reference, parity_data_onnx, parity_data_torch
from edgeship.export.torch_export import AUTO_ORDER, EXPORTERS, captured, root_cause
from edgeship.sources.resolve import resolve
from edgeship.sources.torch_source import TorchSource

_TMP_OUTPUT = "__edgeship_output_{}"

Progress = Callable[[str], None]


def export(source: str | Path | TorchSource | Model, out: str | Path, config: ExportConfig | None = None,
           data: str | Path | Dataset | None = None, *, trust_pickle: bool = False,
           shapes: dict[str, tuple[int, ...]] | None = None,
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
        source = resolve(str(source), trust_pickle=trust_pickle, shapes=shapes)
        if not isinstance(source, TorchSource) and source.format != "onnx":
            raise BadInput(f"{spec!r} is a {source.format} file; export takes a PyTorch source or an ONNX file")
    t0 = time.perf_counter()
    if isinstance(source, Model):
        proto, facts = _from_onnx(source, config, say)
        reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = ort_reference(source)
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
        pdata = (parity_data_onnx(source, config, data, shapes) if isinstance(source, Model)
                 else parity_data_torch(source, io_spec(proto), config, data))
    candidates = [proto]
    unslimmed = facts.pop("_unslimmed", None)
    if unslimmed is not None:
        candidates.append(unslimmed)
    parity: dict[str, Any] | None = None
    with atomic_path(out_path) as tmp:
        for i, candidate in enumerate(candidates):
            write(candidate, tmp, data_name=out_path.name + ".data")
            if pdata is None:
                parity = {"passed": None, "why": "parity check skipped (parity=False)"}
                break
            reference_name = "onnxruntime (source file)" if isinstance(source, Model) else "pytorch eager"
            say(f"parity: {reference_name} vs ONNX Runtime on {len(pdata.feeds)} samples ({pdata.description})")
            parity = check_parity(reference, ref_names, tmp, io_spec(candidate), pdata, config, task)
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
            exported = captured(lambda name=name: EXPORTERS.get(name)(source, axes, config.opset, tmp_names))
            proto = finish_graph(exported, final_names, axes)
            used = name
            break
        except BadInput as exc:
            failures[name] = str(exc)
        except Exception as exc:  # exporters fail in many ways; each is recorded and the next one tried
            failures[name] = root_cause(exc)
    if proto is None:
        detail = "; ".join(f"{k}: {v}" for k, v in failures.items())
        hint = "try --exporter legacy, " if config.exporter == "dynamo" else ""
        raise BadInput(f"{source.name}: torch → ONNX export failed ({detail[:600]}); {hint}simplify forward "
                       "(tensors in, tensors out, no data-dependent Python branches)")
    facts: dict[str, Any] = {
        "exporter": used,
        "exporter_fallback": ({"from": order[0], "why": failures[order[0]][:500]} if used != order[0] else None),
        "opset": opset_of(proto),
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
        forget_output_dims(proto)
    proto = finish_graph(proto, [o.name for o in proto.graph.output], axes)
    facts: dict[str, Any] = {
        "exporter": "onnx-passthrough",
        "exporter_fallback": None,
        "opset": opset_of(proto),
        "onnx": onnx.__version__,
        "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in axes.items()},
        "output_names": [o.name for o in proto.graph.output],
        "source": {"spec": str(model.path)},
    }
    if config.opset != opset_of(proto):
        facts["opset_note"] = f"ONNX sources keep their opset ({opset_of(proto)}); --opset applies to torch sources"
    return _maybe_simplify(proto, config, facts, say)


def _maybe_simplify(proto: Any, config: ExportConfig, facts: dict[str, Any], say: Progress) -> tuple[Any, dict]:
    facts["simplified"] = False
    if not config.simplify:
        facts["simplify_note"] = "disabled"
        return proto, facts
    say("simplifying with onnxslim")
    try:
        import onnxslim

        slim = captured(lambda: onnxslim.slim(copy_model(proto)))
        slim = finish_graph(slim, [o.name for o in proto.graph.output], {}, rename=False)
    except Exception as exc:  # a simplifier failure never fails the export: the unsimplified graph is fine
        facts["simplify_note"] = f"onnxslim failed ({type(exc).__name__}: {first_line(exc)}); kept the exported graph"
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
