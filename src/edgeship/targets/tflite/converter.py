"""ONNX → .tflite through onnx2tf, and PyTorch → .tflite through litert-torch.

onnx2tf downloads sample images from the internet twice: to test-run models whose inputs are all
NHWC images (at every precision, calibration data given or not) and to calibrate INT8 without data.
Offline that is the whole target gone, so it is always handed data instead: the calibration rows
when there are any (and always for INT8), else inputs made from the model's IO spec at the
conversion shapes; its sample-image download is replaced by those rows for the conversion."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput
from edgeship.core.logs import third_party_output
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
    check_output_path(out)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with third_party_output():  # TensorFlow's import banners (absl, oneDNN, CUDA probes)
        onnx2tf = require("onnx2tf", "tflite")

    if cfg.precision == "int8" and (why := why_not_int8(model.io)):
        raise BadInput(why)
    rows = calib_rows(calib, model.io, cfg.calib_samples)
    if cfg.precision == "int8" and not rows:
        raise BadInput("tflite int8 needs calibration data; pass --calib data:NAME or an .npz file")
    given = {k: tuple(v) for k, v in (cfg.shapes or {}).items()}
    padded = padded_sequence(model.io, given, min(cfg.sequence, int(model.facts.get("dim_max", {}).get(
        "sequence", cfg.sequence))))
    if padded:
        given.update({n: (1, padded["length"]) for n in padded["inputs"]})
        rows = [pad_sequence(r, padded) for r in rows]
    shapes = fixed_shapes(model.io, rows, given)
    with scratch_dir(out) as work:
        kwargs: dict[str, Any] = {
            "output_folder_path": str(work / "tf"),
            "copy_onnx_input_output_names_to_tflite": True, "verbosity": "error",
            "overwrite_input_shape": [f"{n}:{','.join(map(str, s))}" for n, s in shapes.items()],
            "output_dynamic_range_quantized_tflite": cfg.precision == "int8-dynamic",
            "output_integer_quantized_tflite": cfg.precision == "int8",
            "quant_type": "per-channel" if cfg.per_channel else "per-tensor",
            # LiteRT has no Erf kernel (a "Flex" TensorFlow op it refuses to run): erf-based GELU, in
            # every BERT and ViT, is built from elementary ops instead (Abramowitz-Stegun, |error| < 1.5e-7)
            "replace_to_pseudo_operators": ["erf"],
        }
        log: list[str] = []
        # The graph as it is first (given no shapes: the file keeps its dynamic batch). If onnx2tf fails,
        # or shapes were given (onnx2tf's overwrite_input_shape leaves the batch free): with fixed input
        # dims and folded shape arithmetic; then (unless asked already) with every input kept in its
        # ONNX layout — onnx2tf transposes 3-D inputs as NCW, which breaks a recurrent state
        # [layers, batch, hidden] (Silero VAD's LSTM).
        attempts = ([] if cfg.shapes else [(False, cfg.keep_nchw)]) + [(True, cfg.keep_nchw)] \
            + ([] if cfg.keep_nchw else [(True, True)])
        for k, (fixed, keep) in enumerate(attempts):
            kwargs["input_onnx_file_path"] = str(_private_copy(model.path, work, shapes, fixed))
            kwargs.pop("keep_shape_absolutely_input_names", None)
            if keep:
                kwargs["keep_shape_absolutely_input_names"] = model.io.input_names
            if rows and cfg.precision == "int8":
                kwargs["custom_input_op_name_np_data_path"] = _calib_files(model.io, rows, shapes, work, keep)
            shutil.rmtree(work / "tf", ignore_errors=True)
            try:
                with capture_c_output() as log, _sample_images(_image_samples(model.io, rows, shapes, keep)), \
                        _reduce_axes_as_ints(), _no_saved_model(cfg.precision != "int8"):
                    onnx2tf.convert(**kwargs)
                break
            except Exception as exc:  # onnx2tf raises bare exceptions for unsupported graphs
                if k + 1 < len(attempts):
                    continue
                said = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else _last(log)
                raise BadInput(f"onnx2tf cannot convert {model.path.name}: {type(exc).__name__}: {said}") from None
        suffix = "_full_integer_quant.tflite" if cfg.int8_io else ONNX2TF_FILES[cfg.precision]
        made = work / "tf" / f"{model.path.stem}{suffix}"  # exact: *_integer_quant also matches *_full_integer_quant
        if not made.is_file():
            raise BadInput(f"onnx2tf wrote no {made.name} for {model.path.name}: {_last(log)}")
        io_map = tflite_io_map(made, model.io)
        os.replace(made, out)
    facts = {**inherited_facts(model), "precision": cfg.precision, "frontend": "onnx2tf", "tflite": io_map,
             "input_layout": {m["name"]: m["layout"] for m in io_map["inputs"]},
             "conversion_shapes": {k: list(v) for k, v in shapes.items()}}
    if padded:
        facts["padded_sequence"] = padded
    return model.derive(out, "convert:tflite", cfg.to_dict(), fmt="tflite", io=model.io, facts=facts).save()


def why_not_int8(io: IOSpec) -> str:
    """onnx2tf calibrates every input as float32 (its representative dataset casts them): a model with
    integer inputs (token ids) cannot be fully quantized by it."""
    ints = [s.name for s in io.inputs if not s.dtype.startswith("onnx:") and np.dtype(s.dtype).kind in "iub"]
    if not ints:
        return ""
    return (f"tflite int8 (onnx2tf) calibrates float inputs only and {', '.join(ints)} "
            f"{'is' if len(ints) == 1 else 'are'} integer; use tflite int8-dynamic, or int8 on another target")


def padded_sequence(io: IOSpec, given: dict[str, tuple[int, ...]], length: int) -> dict[str, Any] | None:
    """How a text model with a free sequence length becomes a fixed-length program: its token inputs
    (integer [batch, sequence], not fixed by ``given``) at ``length``, padded at run time with zeros —
    which the attention mask's zeros mask out — and the outputs along that axis cut back. None when the
    model has no such inputs or no attention mask (padding would change its outputs)."""
    names = [s.name for s in io.inputs if s.name not in given and len(s.shape) == 2
             and not isinstance(s.shape[1], int) and np.dtype(s.dtype).kind in "iu"]
    if not names or "attention_mask" not in names:
        return None
    symbols = {io.input(n).shape[1] for n in names}
    cut = [o.name for o in io.outputs if len(o.shape) >= 2 and o.shape[1] in symbols]
    return {"length": int(length), "inputs": names, "outputs": cut}


def pad_sequence(feeds: dict[str, np.ndarray], padded: dict[str, Any]) -> dict[str, np.ndarray]:
    """``feeds`` with the padded inputs filled with zeros to the program's length (longer ones as they are)."""
    out = dict(feeds)
    for name in padded["inputs"]:
        x = out[name]
        extra = padded["length"] - x.shape[1]
        if extra > 0:
            out[name] = np.pad(x, ((0, 0), (0, extra)))
    return out


# onnx2tf's functions that download its sample images (the module imports it by name as well)
_DOWNLOADERS = ("onnx2tf.onnx2tf", "onnx2tf.utils.common_functions")
SAMPLE_IMAGES = 20  # what onnx2tf's own sample file holds


def _image_samples(io: IOSpec, rows: list[dict[str, np.ndarray]], shapes: dict[str, tuple[int, ...]],
                   keep_nchw: bool) -> np.ndarray:
    """Images in onnx2tf's sample layout (N, H, W, C; floats in [0, 1]) for its test run: the rows of
    the first 4-D input when there are rows, else a seeded pattern at its conversion shape."""
    spec = next((s for s in io.inputs if len(shapes.get(s.name, ())) == 4), None)
    if spec is None:
        return np.zeros((SAMPLE_IMAGES, 8, 8, 3), np.float32)  # no image input: onnx2tf never asks
    arrs = [r[spec.name] for r in rows if spec.name in r and tuple(r[spec.name].shape) == shapes[spec.name]]
    shape = shapes[spec.name]
    if arrs:
        data = np.concatenate(arrs).astype(np.float32)
    else:
        data = np.random.default_rng(0).random((SAMPLE_IMAGES, *shape[1:])).astype(np.float32)
    if not keep_nchw:
        data = data.transpose(CHANNELS_LAST[4])
    reps = -(-SAMPLE_IMAGES // len(data))
    return np.ascontiguousarray(np.concatenate([data] * reps)[:SAMPLE_IMAGES])


@contextlib.contextmanager
def _sample_images(images: np.ndarray) -> Iterator[None]:
    """onnx2tf's sample-image download replaced by ``images`` for the duration of a conversion."""
    import importlib

    saved = []
    for name in _DOWNLOADERS:
        module = importlib.import_module(name)
        if hasattr(module, "download_test_image_data"):
            saved.append((module, module.download_test_image_data))
            module.download_test_image_data = lambda: images.copy()
    try:
        yield
    finally:
        for module, fn in saved:
            module.download_test_image_data = fn


# onnx2tf's reduce converters that take define_reduceXXX by name (each module imports it itself)
_REDUCERS = ("onnx2tf.utils.common_functions", "onnx2tf.ops.ReduceL1", "onnx2tf.ops.ReduceL2")


@contextlib.contextmanager
def _reduce_axes_as_ints() -> Iterator[None]:
    """onnx2tf 1.28.8 hands ReduceL1/ReduceL2 of a rank-1/2 tensor a NumPy integer axis when the axes
    come from an input (opset 18), and tf.norm refuses it ("'axis' must be None, an integer, or a
    tuple of 2 unique integers": the L2 normalisation of every sentence embedder). For the duration
    of a conversion, the axes are handed over as Python ints."""
    import importlib

    saved = []
    for name in _REDUCERS:
        module = importlib.import_module(name)
        original = getattr(module, "define_reduceXXX", None)
        if original is None:
            continue

        def define(*, _original: Any = original, target_axes: Any = None, **kw: Any) -> Any:
            if isinstance(target_axes, list):
                target_axes = [int(a) if isinstance(a, np.integer) else a for a in target_axes]
            return _original(target_axes=target_axes, **kw)

        saved.append((module, original))
        module.define_reduceXXX = define
    try:
        yield
    finally:
        for module, original in saved:
            module.define_reduceXXX = original


@contextlib.contextmanager
def _no_saved_model(skip: bool) -> Iterator[None]:
    """onnx2tf writes a TensorFlow SavedModel beside every conversion; only its full-integer path reads
    it back (through its own ExportArchive, not ``tf.saved_model.save``), the float and dynamic-range
    files are built from the concrete function. Tracking a large Keras graph for that SavedModel is
    most of a conversion (MiniLM: 180 of 227 s on an AMD EPYC), so with ``skip`` it is not written."""
    if not skip:
        yield
        return
    import tensorflow as tf

    original = tf.saved_model.save
    tf.saved_model.save = lambda *args, **kwargs: None
    try:
        yield
    finally:
        tf.saved_model.save = original


def _private_copy(path: Path, work: Path, shapes: dict[str, tuple[int, ...]], fixed: bool) -> Path:
    """The graph onnx2tf converts, in the work folder: onnx2tf saves its simplified graph over the file
    it is given, which must not be the user's (or a run's ``fp32.onnx``). Graphs of opsets before
    :data:`ONNX2TF_MIN_OPSET` are upgraded. ``fixed``: the inputs fixed to the conversion shapes and
    the shape arithmetic of those inputs folded by onnxslim — onnx2tf's own shape inference loses ranks
    through dynamic-batch Expand/Concat (ViT's class token: "Shape must be rank 5 but is rank 3"),
    and with static inputs the same graph converts (the file's batch is then fixed too)."""
    from edgeship.core import onnx_file

    folder = work / ("onnx-fixed" if fixed else "onnx")
    if folder.is_dir():
        return folder / path.name  # made by an earlier attempt
    folder.mkdir()
    copy = folder / path.name
    proto = onnx_file.load(path, check=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), ONNX2TF_MIN_OPSET)
    if opset < ONNX2TF_MIN_OPSET:
        proto = _upgraded(proto) or proto
    if fixed:
        inputs = onnx_file.io_spec(proto).input_names
        proto = _folded(onnx_file.with_fixed_dims(proto, {n: dims for n, dims in shapes.items() if n in inputs}))
    onnx_file.write(proto, copy)
    return copy


def _folded(proto: Any) -> Any:
    """``proto`` with constant shape arithmetic folded (onnxslim), or as it is if onnxslim fails."""
    try:
        import onnxslim

        with third_party_output():
            return onnxslim.slim(proto)
    except Exception:  # a graph onnxslim cannot simplify is converted as it is
        return proto


# onnx2tf converts the ops of older opsets by their modern definitions: an opset-9 Softmax over the
# channels of an [N, C, 1, 1] tensor (flatten-then-softmax) came out over a size-1 axis, all ones
# (measured on the ONNX package's Caffe2 SqueezeNet). Upgraded to opset 13 with ONNX's version
# converter, the same graph converts exactly (rel_err_max 1.1e-6).
ONNX2TF_MIN_OPSET = 13


def _upgraded(proto: Any) -> Any:
    """``proto`` converted to :data:`ONNX2TF_MIN_OPSET` by ONNX's version converter, or None if it cannot."""
    from onnx import version_converter

    try:
        return version_converter.convert_version(proto, ONNX2TF_MIN_OPSET)
    except Exception:  # the converter refuses some graphs; onnx2tf then gets the original
        return None


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
    with third_party_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
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
