"""ONNX → .tflite through onnx2tf (calibration data always passed: onnx2tf otherwise downloads
sample images, which fails offline), and PyTorch → .tflite through litert-torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.tflite.target import TfliteTargetConfig
from edgeship.targets.util import (
    CHANNELS_LAST,
    calib_rows,
    capture_c_output,
    dynamic_shapes,
    fixed_shapes,
    inherited_facts,
    is_torch_source,
    layout_name,
    layout_perm,
    scratch_dir,
    source_model,
)

# which file onnx2tf writes for each precision
ONNX2TF_FILES = {"fp32": "_float32.tflite", "fp16": "_float16.tflite", "int8-dynamic": "_dynamic_range_quant.tflite",
                 "int8": "_integer_quant.tflite"}


def convert(model: Any, out: Path, cfg: TfliteTargetConfig, calib: Any = None) -> Model:
    """A PyTorch source through litert-torch, an ONNX model through onnx2tf."""
    if is_torch_source(model):
        return convert_torch(model, out, cfg)
    return convert_onnx(model, out, cfg, calib)


def convert_onnx(model: Model, out: Path, cfg: TfliteTargetConfig, calib: Any = None) -> Model:
    require("onnx2tf", "tflite")
    check_output_path(out)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import onnx2tf

    rows = calib_rows(calib, model.io, cfg.calib_samples)
    if cfg.precision == "int8" and not rows:
        raise BadInput("tflite int8 needs calibration data; pass --calib data:NAME or an .npz file")
    shapes = fixed_shapes(model.io, rows, {k: tuple(v) for k, v in (cfg.shapes or {}).items()})
    with scratch_dir(out) as work:
        kwargs: dict[str, Any] = {
            "input_onnx_file_path": str(model.path), "output_folder_path": str(work / "tf"),
            "copy_onnx_input_output_names_to_tflite": True, "verbosity": "error",
            "overwrite_input_shape": [f"{n}:{','.join(map(str, s))}" for n, s in shapes.items()],
            "output_dynamic_range_quantized_tflite": cfg.precision == "int8-dynamic",
            "output_integer_quantized_tflite": cfg.precision == "int8",
            "quant_type": "per-channel" if cfg.per_channel else "per-tensor",
        }
        if cfg.keep_nchw:
            kwargs["keep_shape_absolutely_input_names"] = model.io.input_names
        if rows and cfg.precision == "int8":
            kwargs["custom_input_op_name_np_data_path"] = _calib_files(model.io, rows, shapes, work, cfg.keep_nchw)
        log: list[str] = []
        try:
            with capture_c_output() as log:
                onnx2tf.convert(**kwargs)
        except Exception as exc:  # onnx2tf raises bare exceptions for unsupported graphs
            raise BadInput(f"onnx2tf cannot convert {model.path.name}: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else _last(log)}") from None
        suffix = "_full_integer_quant.tflite" if cfg.int8_io else ONNX2TF_FILES[cfg.precision]
        made = work / "tf" / f"{model.path.stem}{suffix}"  # exact: *_integer_quant also matches *_full_integer_quant
        if not made.is_file():
            raise BadInput(f"onnx2tf wrote no {made.name} for {model.path.name}: {_last(log)}")
        io_map = tflite_io_map(made, model.io)
        os.replace(made, out)
    facts = {**inherited_facts(model), "precision": cfg.precision, "frontend": "onnx2tf", "tflite": io_map,
             "input_layout": {m["name"]: m["layout"] for m in io_map["inputs"]},
             "conversion_shapes": {k: list(v) for k, v in shapes.items()}}
    return model.derive(out, "convert:tflite", cfg.to_dict(), fmt="tflite", io=model.io, facts=facts).save()


def _last(log: list[str]) -> str:
    lines = [ln for ln in "".join(log).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def _calib_files(io: IOSpec, rows: list[dict[str, np.ndarray]], shapes: dict[str, tuple[int, ...]], work: Path,
                 keep_nchw: bool) -> list[list[Any]]:
    """One .npy per input, in the converted model's layout, and an identity normalisation (our data is
    already what the model takes; onnx2tf's defaults are ImageNet mean/std)."""
    items: list[list[Any]] = []
    for spec in io.inputs:
        arrs = [r[spec.name] for r in rows if tuple(r[spec.name].shape) == shapes[spec.name]]
        if not arrs:
            raise BadInput(f"no calibration sample of input {spec.name!r} has the conversion shape "
                           f"{list(shapes[spec.name])}; give fixed-size calibration data")
        data = np.concatenate(arrs).astype(np.float32)
        perm = CHANNELS_LAST.get(data.ndim) if data.ndim == 4 and not keep_nchw else None
        if perm:
            data = data.transpose(perm)
        path = work / f"calib_{len(items)}.npy"
        np.save(path, data)
        ones = [1] * data.ndim
        items.append([spec.name, str(path), np.zeros(ones, np.float32), np.ones(ones, np.float32)])
    return items


def tflite_io_map(path: Path, io: IOSpec) -> dict[str, list[dict[str, Any]]]:
    """Match the .tflite tensors to the ONNX inputs/outputs: by name where the converter kept it, else by
    position; and record the layout permutation from ONNX order to the file's order."""
    interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
    it = interp.Interpreter(model_path=str(path))
    return {"inputs": _match(io.inputs, it.get_input_details(), "input"),
            "outputs": _match(io.outputs, it.get_output_details(), "output")}


def _match(specs: Any, details: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    if len(specs) != len(details):
        raise BadInput(f"the converted model has {len(details)} {what}s, the ONNX model {len(specs)}")
    out = []
    used: set[int] = set()
    for pos, spec in enumerate(specs):
        idx = next((i for i, d in enumerate(details) if i not in used and
                    (d["name"] == spec.name or d["name"] == f"serving_default_{spec.name}:0")), None)
        if idx is None:
            idx = pos
        used.add(idx)
        d = details[idx]
        native = tuple(int(x) for x in d.get("shape_signature", d["shape"]))
        perm = layout_perm(tuple(spec.shape), native) if spec.shape else None
        out.append({"name": spec.name, "index": idx, "native_name": d["name"], "perm": list(perm) if perm else None,
                    "dtype": str(np.dtype(d["dtype"])), "layout": layout_name(len(native), perm)})
    return out


def convert_torch(source: Any, out: Path, cfg: TfliteTargetConfig) -> Model:
    """PyTorch → .tflite with litert-torch (fp32; INT8 from PyTorch goes through the ONNX path here)."""
    if cfg.precision != "fp32":
        raise BadInput(f"tflite from a PyTorch source supports fp32 here; for {cfg.precision} convert the exported "
                       "ONNX file (edgeship export, then edgeship convert model.onnx --target tflite)")
    check_output_path(out)
    litert_torch = require("litert_torch", "tflite", "litert-torch")
    import torch

    # the example inputs, or ones of the shapes asked for (a fixed sequence length)
    args = tuple(torch.ones(tuple(cfg.shapes[n]), dtype=t.dtype) if cfg.shapes and n in cfg.shapes else t
                 for n, t in source.example_inputs.items())
    shapes = dynamic_shapes(source, cfg.max_dim) if cfg.dynamic else None
    with scratch_dir(out) as work:
        try:
            edge = litert_torch.convert(source.module.eval(), args, dynamic_shapes=shapes)
            edge.export(str(work / out.name))
        except Exception as exc:  # litert-torch raises many kinds for unsupported ops
            raise BadInput(f"litert-torch cannot convert {source.name}: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}") from None
        parent = source_model(source)
        io = IOSpec(tuple(parent.io.inputs), tuple(parent.io.outputs))
        io_map = tflite_io_map(work / out.name, _static_io(io, dict(zip(source.example_inputs, args))))
        os.replace(work / out.name, out)
    facts = {**inherited_facts(parent), "precision": "fp32", "frontend": "litert-torch", "tflite": io_map,
             "dynamic_dims": shapes is not None,
             "input_layout": {m["name"]: m["layout"] for m in io_map["inputs"]}}
    return parent.derive(out, "convert:tflite", cfg.to_dict(), fmt="tflite", io=io, facts=facts).save()


def _static_io(io: IOSpec, args: dict[str, Any]) -> IOSpec:
    from edgeship.core.artifact import TensorSpec

    ins = tuple(TensorSpec(s.name, s.dtype, tuple(int(d) for d in args[s.name].shape))
                for s in io.inputs)
    outs = tuple(TensorSpec(s.name, s.dtype, ()) for s in io.outputs)
    return IOSpec(ins, outs)
