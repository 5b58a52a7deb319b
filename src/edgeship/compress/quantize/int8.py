"""INT8 quantization with ONNX Runtime: dynamic (weights INT8, activations quantized per call) and
static QDQ (activation ranges calibrated on data)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgeship.compress.quantize import graph
from edgeship.compress.quantize.api import QuantContext, register_quantizer
from edgeship.compress.quantize.configs import Int8DynamicConfig, Int8StaticConfig
from edgeship.compress.quantize.prepare import prepared, resolve_nodes, wants_fusion

# ORT's dynamic registry minus the embedding ops, for quantize_embedding_gather=False.
_DYNAMIC_NO_GATHER = ["MatMul", "Attention", "Conv", "LSTM", "Transpose"]


def smoothed(src: Path, alpha: float, ctx: QuantContext, min_ratio: float = 0.0) -> tuple[Path, list[str], int]:
    """``src`` with SmoothQuant-style smoothing at ``alpha``; activation statistics cached per model."""
    key = ("smoothed", str(src), alpha, min_ratio)
    if key in ctx.cache:
        return ctx.cache[key]
    dst = ctx.tmp(f"smooth-{alpha:g}-{len(ctx.cache)}.onnx")
    stats = ctx.cache.get(("amax", str(src)))
    info = graph.smooth(src, dst, alpha, ctx.calib.samples[:64], stats=stats, min_outlier_ratio=min_ratio)
    ctx.cache[("amax", str(src))] = info["stats"]
    ctx.cache[key] = (dst, info["smoothed"], info["muls"])
    return ctx.cache[key]


@register_quantizer(Int8DynamicConfig)
def int8_dynamic(src: Path, cfg: Int8DynamicConfig, ctx: QuantContext, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # no ORT pre-processing: its fusions rename nodes and the dynamic quantizer does not need it
    model_in, facts = prepared(src, ctx, fuse=wants_fusion(cfg.optimize, dynamic=True), pre_process=False)
    excluded = resolve_nodes(model_in, cfg.nodes_to_exclude)
    if cfg.smooth_alpha is not None:
        model_in, names, muls = smoothed(model_in, cfg.smooth_alpha, ctx, cfg.smooth_min_outlier_ratio)
        facts = {**facts, "smoothed_nodes": len(names), "smoothing_muls": muls}
    op_types = list(cfg.op_types) or (None if cfg.quantize_embedding_gather else _DYNAMIC_NO_GATHER)
    graph.quiet_ort_logs()
    quantize_dynamic(model_in, out, op_types_to_quantize=op_types, per_channel=cfg.per_channel,
                     reduce_range=cfg.reduce_range, weight_type=QuantType.QInt8,
                     nodes_to_exclude=excluded,
                     # fused contrib ops defeat ONNX shape inference; their tensors are float
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True})
    return {**facts, "nodes_kept_fp32": excluded}


@register_quantizer(Int8StaticConfig)
def int8_static(src: Path, cfg: Int8StaticConfig, ctx: QuantContext, out: Path) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry

    from edgeship.compress.quantize.calibration import calibrate

    model_in, facts = prepared(src, ctx, fuse=wants_fusion(cfg.optimize, dynamic=False))
    excluded = resolve_nodes(model_in, cfg.nodes_to_exclude)
    samples = ctx.calib.samples[:cfg.calib_samples]
    ctx.say(f"calibrating ({cfg.calibration}, {len(samples)} samples, {cfg.pad_policy})")
    cache = calibrate(model_in, samples, cfg.calibration, ctx.workdir, policy=cfg.pad_policy,
                      chunk_size=cfg.chunk_size, symmetric=cfg.symmetric_activations, percentile=cfg.percentile)
    op_types = list(cfg.op_types_include) or sorted(QDQRegistry)
    op_types = [t for t in op_types if t not in cfg.op_types_exclude]
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[cfg.calibration]
    graph.quiet_ort_logs()
    quantize_static(model_in, out, calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=op_types, per_channel=cfg.per_channel,
                    activation_type=QuantType.QInt8 if cfg.symmetric_activations else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                    calibrate_method=method, calibration_cache_path=cache,
                    extra_options={"ActivationSymmetric": cfg.symmetric_activations, "WeightSymmetric": True})
    facts = {**facts, "calibration": {"method": cfg.calibration, "samples": len(samples), "policy": cfg.pad_policy},
             "nodes_kept_fp32": excluded}
    if cfg.bias_correction:
        from edgeship.compress.quantize.bias_correction import correct_biases

        corrected = ctx.tmp(f"bias-corrected-{out.stem}.onnx")
        info = correct_biases(model_in, out, ctx.calib.samples[:cfg.bias_correction_samples], corrected,
                              progress=ctx.say)
        if info["layers"]:
            ctx.say(f"bias correction: {info['layers']} layers on {info['samples']} samples")
            shutil.move(corrected, out)
        else:
            corrected.unlink(missing_ok=True)
        facts["bias_correction"] = {k: v for k, v in info.items() if k != "per_layer"}
    return facts
