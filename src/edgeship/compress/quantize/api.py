"""The quantizer registry and ``quantize(model, config) -> Model``.

Quantizers register for a config type (``@register_quantizer(Int8StaticConfig)``) and dispatch on
the type of the config they are given, as torchao's ``quantize_`` does. A quantizer is a function
``(source: Path, config, ctx: QuantContext, out: Path) -> dict`` that writes an ONNX file to ``out``
and returns facts about it; everything shared (temporary folder, calibration data, transformer
fusion, output checks, the atomic write and the Model sidecar) happens here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.compress.quantize.configs import QuantConfig
from edgeship.core.errors import BadInput
from edgeship.core.registry import TypeRegistry

if TYPE_CHECKING:  # numpy-backed types: importing this module stays light
    from edgeship.core.artifact import Model
    from edgeship.core.data import Dataset

QuantizerFn = Callable[[Path, Any, "QuantContext", Path], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Quantizer:
    config_type: type[QuantConfig]
    fn: QuantizerFn


# Keyed by config class. The modules that register quantizers are imported on first use: they import onnx/ORT.
QUANTIZERS: TypeRegistry[Quantizer] = TypeRegistry("quantization method", modules=[
    "edgeship.compress.quantize.fp16", "edgeship.compress.quantize.int8", "edgeship.compress.quantize.weight_only",
    "edgeship.compress.quantize.mixed"])


def register_quantizer(config_type: type[QuantConfig]) -> Callable[[QuantizerFn], QuantizerFn]:
    """Decorator: the function quantizes models for configs of ``config_type``."""

    def deco(fn: QuantizerFn) -> QuantizerFn:
        QUANTIZERS.add(config_type, Quantizer(config_type, fn))
        return fn

    return deco


def quantizer_for(config: QuantConfig) -> Quantizer:
    if not isinstance(config, QuantConfig):
        raise BadInput(f"expected a quantization config (Fp16Config, Int8StaticConfig, ...), "
                       f"got {type(config).__name__}")
    return QUANTIZERS.get(type(config))


def methods() -> list[str]:
    """Names of the registered methods (``--method`` values)."""
    return sorted(t.kind for t in QUANTIZERS.types())


def default_method_configs() -> list[QuantConfig]:
    """What ``edgeship optimize`` tries by default, in order (fp32 is the unquantized model itself)."""
    from edgeship.compress.quantize.configs import (
        Fp16Config,
        Int4WeightConfig,
        Int8DynamicConfig,
        Int8StaticConfig,
        MixedConfig,
    )

    return [Fp16Config(), Int8DynamicConfig(), Int8StaticConfig(), Int4WeightConfig(), MixedConfig()]


@dataclasses.dataclass
class QuantContext:
    """What one quantize() call shares between steps: a private temporary folder, data, caches."""

    workdir: Path
    calib: Dataset | None = None  # validated
    eval_data: Dataset | None = None  # selection data for the mixed search (held out of calibration)
    reference: list[dict[str, Any]] | None = None  # reference outputs aligned with eval_data
    verify: Dataset | None = None  # held-out data, disjoint from both, that the chosen variant must pass
    progress: Callable[[str], None] | None = None
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    def say(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(msg)

    def tmp(self, name: str) -> Path:
        return self.workdir / name


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    # ORT's quantizers write helper files (augmented models, pre-processed copies); they all go
    # here, never into the current directory, and the folder is removed whatever happens.
    d = Path(tempfile.mkdtemp(prefix="edgeship-quant-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def quantize(model: Model | str | Path, config: QuantConfig, out: str | Path | None = None,
             calib: Dataset | str | Path | None = None, eval_data: Dataset | str | Path | None = None,
             reference: list[dict[str, Any]] | None = None, progress: Callable[[str], None] | None = None,
             verify_data: Dataset | str | Path | None = None) -> Model:
    """Quantize an ONNX ``model`` (a Model or a path) with ``config``; returns the new Model.

    ``calib`` is a Dataset or a data spec (``data:sentences:calib``, ``calib.npz``) for methods that
    calibrate; ``eval_data``/``reference`` give the mixed search its selection data and their
    reference outputs (by default the calibration source's ``select`` split, else a part of the
    calibration data, and the FP32 model's own outputs); ``verify_data``: held-out data, disjoint
    from both, that the chosen variant must also pass (with the stress probes).
    ``out`` defaults to ``<input stem>.<kind>.onnx`` beside the input.
    """
    from edgeship.compress.quantize import calibration, graph
    from edgeship.core import atomic
    from edgeship.core.artifact import Model

    src = model if isinstance(model, Model) else Model.open(model)
    if src.format != "onnx":
        raise BadInput(f"{str(src.path)!r} is a {src.format} file; quantize takes ONNX "
                       "(export it first: edgeship export)")
    q = quantizer_for(config)
    out_path = Path(out) if out is not None else src.path.with_name(f"{src.path.stem}.{config.kind}.onnx")
    atomic.check_output_path(out_path)
    if out_path.resolve() == src.path.resolve():
        raise BadInput(f"output {str(out_path)!r} is the input file; choose another name with -o")
    t0 = time.perf_counter()
    with _workdir() as wd:
        ctx = QuantContext(wd, progress=progress)
        if config.needs_calibration:
            if calib is None:
                raise BadInput(f"method {config.kind!r} needs calibration data; pass --calib DATA "
                               "(data:NAME, an .npz file or a folder of .npy files)")
            ctx.calib = calibration.load_calibration(calib, src.io)
        elif calib is not None:
            ctx.calib = calibration.load_calibration(calib, src.io)
        if eval_data is not None:
            from edgeship.core.data import load_data

            ctx.eval_data = load_data(eval_data, src.io)
            if reference is not None and len(reference) != len(ctx.eval_data):
                raise BadInput(f"reference has {len(reference)} outputs for {len(ctx.eval_data)} eval samples; "
                               "give one per sample")
        ctx.reference = reference
        if verify_data is not None:
            from edgeship.core.data import load_data

            ctx.verify = load_data(verify_data, src.io)
        graph.load_checked(src.path)  # one-line errors for unreadable input before any work
        produced = wd / "quantized.onnx"
        facts = q.fn(src.path, config, ctx, produced) or {}
        proto = graph.load_checked(produced, what="the quantized model")
        graph.assert_sane(proto, config.kind)
        facts = {**facts, "method": config.kind, "quantize_time_s": round(time.perf_counter() - t0, 2)}
        from edgeship.core import onnx_file

        onnx_file.save(proto, out_path)
    derived = src.derive(out_path, stage="quantize", config=config.to_dict(), fmt="onnx",
                         io=onnx_file.io_spec(proto))
    size_in, size_out = src.size_bytes, derived.size_bytes
    facts.update(size_bytes=size_out, size_ratio=round(size_out / max(1, size_in), 4))
    result = derived.with_facts(**facts).save()
    gate = facts.get("gate")
    if isinstance(gate, dict) and gate.get("passed") is False:
        from edgeship.core.errors import GateFailed

        err = GateFailed(f"{config.kind}: no variant met the gates within the budget ({gate.get('why')}); the closest "
                         f"one is kept at {str(out_path)!r}; raise time_budget_s/max_fp32_nodes or relax the gates")
        err.model = result  # type: ignore[attr-defined]
        raise err
    return result
