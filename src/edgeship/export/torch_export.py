"""The torch → ONNX exporters, by name: ``dynamo`` (torch.export capture) and ``legacy`` (TorchScript
tracer). Each takes a source, its dynamic axes, an opset and temporary output names and returns an
``onnx.ModelProto``; ``captured`` keeps their chatter off our output."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edgeship.core.onnx_graph import first_line, forget_output_dims
from edgeship.core.registry import Registry
from edgeship.sources.torch_source import TorchSource

if TYPE_CHECKING:
    from onnx import ModelProto

Exporter = Callable[[TorchSource, dict[str, dict[int, str]], int, list[str]], "ModelProto"]
T = TypeVar("T")
EXPORTERS: Registry[Exporter] = Registry("exporter")
AUTO_ORDER = ("dynamo", "legacy")


@EXPORTERS.register("dynamo")
def export_dynamo(source: TorchSource, axes: dict[str, dict[int, str]], opset: int,
                  output_names: list[str]) -> ModelProto:
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
def export_legacy(source: TorchSource, axes: dict[str, dict[int, str]], opset: int,
                  output_names: list[str]) -> ModelProto:
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
        forget_output_dims(proto, keep=set(output_axes))
    return proto


def warm_exporter() -> None:
    """Export a two-layer module once: a process's first ``torch.onnx.export`` spends seconds on
    imports and set-up that any later export then skips (a sweep's worker does it while idle)."""
    import torch

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    captured(lambda: torch.onnx.export(module, (torch.zeros(1, 1, 4, 4),), dynamo=True, verbose=False).model_proto)


def captured(fn: Callable[[], T]) -> T:
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


def root_cause(exc: BaseException) -> str:
    """The innermost cause's first line: TorchExportError's own message only says which step failed."""
    outer = f"{type(exc).__name__}: {first_line(exc)}"
    inner = exc
    seen = 0
    while (inner.__cause__ or inner.__context__) is not None and seen < 10:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
        seen += 1
    if inner is exc:
        return outer
    return f"{type(exc).__name__} ({type(inner).__name__}: {first_line(inner)})"
