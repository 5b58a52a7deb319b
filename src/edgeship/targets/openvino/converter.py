"""ONNX → OpenVINO IR, with NNCF INT8 for the int8 precision.

NNCF's settings for INT8 are searched per model when the caller hands in a selector (a judge of
candidates on held-out selection data and probes, ``check.selection``): the transformer scheme
with and without SmoothQuant and the generic scheme for a BERT-like graph; the performance and
mixed presets and full bias correction for other graphs. What was tried and how each did is in
the result's facts (``nncf.search``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.errors import BadInput, NotApplicable
from edgeship.core.logs import third_party_output
from edgeship.targets.openvino import offline, precision_guard
from edgeship.targets.openvino.target import ACTIVATION_GROUPS, PRECISIONS, OpenVinoTargetConfig, Selector
from edgeship.targets.util import calib_rows, check_output_path, inherited_facts, scratch_dir


def convert(model: Model, out: Path, cfg: OpenVinoTargetConfig, calib: Any = None,
            selector: Selector | None = None) -> Model:
    ov = offline.openvino()
    if out.suffix != ".xml":  # IR is .xml + .bin whatever the caller named it (a pipeline may use the format name)
        out = out.with_suffix(".xml")
    check_output_path(out)
    core = ov.Core()
    try:
        ov_model = core.read_model(str(model.path))
    except RuntimeError as exc:
        missing = re.search(r"No conversion rule found for operations: ([^\n]+)", str(exc))
        if cfg.precision == "as-built" and missing:  # a quantizer's fused kernels (ONNX Runtime's QAttention)
            raise NotApplicable(f"as-built: OpenVINO has no conversion for the file's {missing.group(1).strip()}; "
                                "run it on onnxruntime, or give OpenVINO the FP32 file (--precision int8 "
                                "quantizes it with NNCF)") from None
        # the message's first line only names OpenVINO's own source file; the ops it lacks say what is wrong
        why = f"no conversion for {missing.group(1).strip()}" if missing else str(exc).strip().splitlines()[0][:300]
        raise BadInput(f"OpenVINO cannot read {str(model.path)!r}: {why}") from None
    if cfg.length_buckets and not any("mask" in n for n in model.io.input_names):
        raise BadInput("openvino length_buckets pad text inputs and mask the padding out; the model has no "
                       "attention mask input (inputs: " + ", ".join(model.io.input_names) + "); drop length_buckets")
    compress_fp16, hint = PRECISIONS[cfg.precision]
    facts: dict[str, Any] = {**inherited_facts(model), "precision": cfg.precision, "inference_precision": hint,
                             "device": "CPU", "input_layout": "as in the ONNX model (unchanged)"}
    if cfg.static_shapes:  # the runner compiles a static model per input shape (per bucket for text)
        facts.update(static_shapes=True, length_buckets=sorted(cfg.length_buckets))
    guard = cfg.keep_breaking_layers and cfg.precision in ("fp16", "int8")
    rows = _sample_rows(model.io, calib, cfg) if guard else []
    extremes = precision_guard.measure(core, ov_model, rows) if guard else None
    if cfg.precision == "fp16" and extremes is not None and \
            (why := precision_guard.fp16_breaks(core, ov_model, rows, extremes)):
        # the CPU plugin cannot keep single layers in f32 at an f16 hint: the whole model runs in f32
        facts["inference_precision"] = "f32"
        facts["kept_in_higher_precision"] = {"layers": "all (fp16 weights, f32 arithmetic)", "why": why}
    if cfg.precision == "int8":
        ignored = precision_guard.int8_ignored(ov_model, extremes) if extremes is not None else []
        if selector is not None and cfg.search:  # NNCF's settings chosen per model by the caller's judge
            ov_model, facts["nncf"] = _searched_int8(ov, ov_model, model, out, cfg, calib, selector, ignored)
        else:
            ov_model, facts["nncf"] = _nncf_int8(ov_model, model.io, _resolved(cfg, model), calib, ignored)
        if ignored:
            facts["kept_in_higher_precision"] = {"layers": len(ignored), "why": precision_guard.INT8_IGNORED_WHY}
    if cfg.precision == "int8-weight":
        nncf = offline.nncf()
        with third_party_output():
            ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        facts["nncf"] = {"compress_weights": "INT8_ASYM"}
        if cfg.activation_group_size is not None:
            facts["activation_group_size"] = cfg.activation_group_size
    if cfg.precision == "as-built":
        kinds = {op.get_type_name() for op in ov_model.get_ops()}
        facts["quantization"] = ("as built: its quantize/dequantize pairs run in INT8" if "FakeQuantize" in kinds
                                 else "as built: no static INT8 in the graph")
    with scratch_dir(out) as work:
        tmp = work / out.name
        ov.save_model(ov_model, str(tmp), compress_to_fp16=compress_fp16)
        # the .bin goes first: a reader of the new .xml always finds its weights
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)
    facts["ops"] = len(ov_model.get_ops())
    if cfg.precision == "int8-weight" and cfg.activation_group_size is None and selector is not None and cfg.search:
        facts.update(_searched_activation_groups(model, out, cfg, facts, selector))
    if cfg.precision == "int8-weight":
        group = facts.get("activation_group_size")
        facts["nncf"]["activations"] = ("INT8 at run time, per token and per OpenVINO's default group of channels"
                                        if group is None else "float" if group == 0 else
                                        f"INT8 at run time, per token and per {group} input channels")
    return model.derive(out, "convert:openvino", cfg.to_dict(), fmt="openvino", io=model.io, facts=facts).save()


def _searched_activation_groups(model: Model, ir: Path, cfg: OpenVinoTargetConfig, facts: dict[str, Any],
                                selector: Selector) -> dict[str, Any]:
    """int8-weight: the coarsest activation group (ACTIVATION_GROUPS) that the selector passes, else
    the one it judges closest; every group tried is recorded. The IR is the same for all: the group
    is how the CPU plugin compiles it."""
    records: list[dict[str, Any]] = []
    for group in ACTIVATION_GROUPS:
        candidate = model.derive(ir, "convert:openvino", cfg.to_dict(), fmt="openvino", io=model.io,
                                 facts={**facts, "activation_group_size": group})
        _, (record,) = selector([(f"groups of {group}", candidate)])
        records.append({**record, "group": group})
        if record["passed"]:
            break
    passing = [r for r in records if r["passed"]]
    chosen = passing[0] if passing else max(records, key=lambda r: r["slack"])
    for r in records:
        r["chosen"] = r is chosen
    return {"activation_group_size": chosen["group"],
            "activation_group_search": {"chosen": chosen["group"], "candidates": records}}


def search_space(cfg: OpenVinoTargetConfig, model: Model) -> list[tuple[str, OpenVinoTargetConfig]]:
    """The NNCF settings tried for ``model``: (label, config) pairs, the default first."""
    resolved = _resolved(cfg, model)
    if resolved.model_type == "transformer":
        out = [("transformer+smoothquant", resolved.replace(smooth_quant=True)),
               ("transformer", resolved.replace(smooth_quant=False))]
        if cfg.model_type == "auto":
            out.append(("generic", resolved.replace(model_type=None)))
        return out
    return [("performance", resolved.replace(preset="performance", fast_bias_correction=True)),
            ("mixed-preset", resolved.replace(preset="mixed", fast_bias_correction=True)),
            ("performance+bias-correction", resolved.replace(preset="performance", fast_bias_correction=False))]


def _searched_int8(ov: Any, ov_model: Any, model: Model, out: Path, cfg: OpenVinoTargetConfig, calib: Any,
                   selector: Selector, ignored: list[str]) -> tuple[Any, dict[str, Any]]:
    """Each setting of the search space quantized by NNCF, written as IR to a scratch folder, handed
    to ``selector``; the one it names is kept."""
    built: list[tuple[str, Any, dict[str, Any]]] = []
    candidates: list[tuple[str, Model]] = []
    with scratch_dir(out) as work:
        for label, option in search_space(cfg, model):
            quantized, facts = _nncf_int8(ov_model.clone(), model.io, option, calib, ignored)
            path = work / f"candidate-{len(built)}.xml"
            ov.save_model(quantized, str(path), compress_to_fp16=False)
            built.append((label, quantized, facts))
            candidates.append((label, model.derive(path, "convert:openvino", option.to_dict(), fmt="openvino",
                                                   io=model.io, facts={"inference_precision": "f32"})))
        index, records = selector(candidates)
    label, chosen, facts = built[index]
    return chosen, {**facts, "search": {"chosen": label, "candidates": records}}


def _resolved(cfg: OpenVinoTargetConfig, model: Model) -> OpenVinoTargetConfig:
    """``model_type="auto"``: NNCF's transformer scheme for a BERT-like ONNX graph, else the generic one."""
    if cfg.model_type != "auto":
        return cfg
    kind = None
    if model.format == "onnx":
        import onnx

        from edgeship.core.onnx_graph import is_transformer

        if is_transformer(onnx.load(str(model.path), load_external_data=False)):
            kind = "transformer"
    return cfg.replace(model_type=kind)


def _sample_rows(io: IOSpec, calib: Any, cfg: OpenVinoTargetConfig) -> list[dict[str, Any]]:
    """Inputs to measure the activations on: the calibration rows, else synthetic ones."""
    rows = calib_rows(calib, io, precision_guard.SAMPLES)
    if rows:
        return rows
    from edgeship.core.data import load_data

    return calib_rows(load_data("data:synthetic", io, limit=precision_guard.SAMPLES), io)


def _nncf_int8(ov_model: Any, io: IOSpec, cfg: OpenVinoTargetConfig, calib: Any,
               ignored: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
    nncf = offline.nncf()
    rows = calib_rows(calib, io, cfg.calib_samples)
    if not rows:
        raise BadInput("openvino int8 (NNCF) needs calibration data; pass --calib data:NAME or an .npz file")
    names = io.input_names
    dataset = nncf.Dataset(rows, lambda feeds: {n: feeds[n] for n in names})
    kwargs: dict[str, Any] = {"subset_size": min(cfg.calib_samples, len(rows)),
                              "preset": getattr(nncf.QuantizationPreset, cfg.preset.upper()),
                              "fast_bias_correction": cfg.fast_bias_correction}
    if cfg.model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
        if not cfg.smooth_quant:
            kwargs["advanced_parameters"] = nncf.AdvancedQuantizationParameters(
                smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1))
    if ignored:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=list(ignored), validate=False)
    with third_party_output():  # NNCF's own progress bars
        quantized = nncf.quantize(ov_model, dataset, **kwargs)
    return quantized, {"subset_size": kwargs["subset_size"], "preset": cfg.preset, "kept_f32_ops": len(ignored or ()),
                       "model_type": cfg.model_type or "generic",
                       "smooth_quant": cfg.smooth_quant if cfg.model_type else None}
