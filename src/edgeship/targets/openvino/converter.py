"""ONNX → OpenVINO IR, with NNCF INT8 for the int8 precision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.openvino.target import PRECISIONS, OpenVinoTargetConfig
from edgeship.targets.util import calib_rows, check_output_path, inherited_facts, scratch_dir


def convert(model: Model, out: Path, cfg: OpenVinoTargetConfig, calib: Any = None) -> Model:
    ov = require("openvino", "openvino")
    if out.suffix != ".xml":  # IR is .xml + .bin whatever the caller named it (a pipeline may use the format name)
        out = out.with_suffix(".xml")
    check_output_path(out)
    core = ov.Core()
    try:
        ov_model = core.read_model(str(model.path))
    except RuntimeError as exc:
        raise BadInput(f"OpenVINO cannot read {str(model.path)!r}: {str(exc).strip().splitlines()[0][:300]}") from None
    compress_fp16, hint = PRECISIONS[cfg.precision]
    facts: dict[str, Any] = {**inherited_facts(model), "precision": cfg.precision, "inference_precision": hint,
                             "device": "CPU", "input_layout": "as in the ONNX model (unchanged)"}
    if cfg.precision == "int8":
        ov_model, facts["nncf"] = _nncf_int8(ov_model, model.io, _resolved(cfg, model), calib)
    with scratch_dir(out) as work:
        tmp = work / out.name
        ov.save_model(ov_model, str(tmp), compress_to_fp16=compress_fp16)
        # the .bin goes first: a reader of the new .xml always finds its weights
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)
    facts["ops"] = len(ov_model.get_ops())
    return model.derive(out, "convert:openvino", cfg.to_dict(), fmt="openvino", io=model.io, facts=facts).save()


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


def _nncf_int8(ov_model: Any, io: IOSpec, cfg: OpenVinoTargetConfig, calib: Any) -> tuple[Any, dict[str, Any]]:
    nncf = require("nncf", "openvino")
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
    quantized = nncf.quantize(ov_model, dataset, **kwargs)
    return quantized, {"subset_size": kwargs["subset_size"], "preset": cfg.preset,
                       "model_type": cfg.model_type or "generic",
                       "smooth_quant": cfg.smooth_quant if cfg.model_type else None}
