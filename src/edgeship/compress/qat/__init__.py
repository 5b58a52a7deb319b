"""Quantization-aware training: fine-tune with fake quantization, export a quantized ONNX model,
and compare it with post-training quantization (PTQ) of the same model on the same data.

- ``bits=8``: every Conv/Linear gets torch.ao ``FakeQuantize`` on its input and output (per-tensor
  affine uint8) and on its weight (per-channel symmetric int8). Observers are switched off before
  the legacy exporter (opset 17) writes QuantizeLinear/DequantizeLinear pairs, which ONNX Runtime
  fuses into QLinearConv / QLinearMatMul kernels. PTQ baseline: ``onnxruntime.quantization``
  static QDQ, per-channel, calibrated on the training data.
- ``bits=4``: weight-only, per-channel symmetric int4 ([-8, 7]) fake quantization; the trained
  weights are written as INT4 initializers behind DequantizeLinear (opset 21). PTQ baseline: the
  same int4 grid by round-to-nearest on the unchanged weights.

BatchNorm layers that follow a convolution are folded into it first (inference semantics), so the
quantized weights are the ones the runtime uses.

Python API: ``qat(source, QatConfig(bits=8), data=..., out="model.int8.onnx") -> CompressResult``
(``report["comparison"]`` holds QAT vs PTQ vs FP32 on the held-out data, measured in ONNX Runtime).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from edgeship.compress.steps import register_step
from edgeship.core.config import Config
from edgeship.core.errors import BadInput

LEGACY_OPSET = 17


@dataclasses.dataclass(frozen=True)
class QatConfig(Config):
    kind: ClassVar[str] = "qat"

    bits: Literal[8, 4] = 8
    epochs: int = 2
    lr: float = 1e-4
    batch_size: int = 32
    temperature: float = 4.0
    alpha: float | None = None  # FP32-teacher weight; 1 - alpha weights hard labels (None: auto)
    max_steps: int | None = None
    compare_ptq: bool = True
    calib_samples: int = 128  # rows used to calibrate the PTQ baseline
    seed: int = 0

    def validate(self) -> None:
        if self.bits not in (8, 4):
            raise BadInput(f"bits {self.bits}: choose 8 (INT8 weights and activations) or 4 (INT4 weights)")
        if self.epochs < 1:
            raise BadInput(f"epochs {self.epochs} must be at least 1")
        if self.lr <= 0 or self.batch_size < 1:
            raise BadInput("lr must be positive and batch_size at least 1")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise BadInput(f"alpha {self.alpha} must be between 0 and 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise BadInput(f"max_steps {self.max_steps} must be at least 1")
        if self.calib_samples < 1:
            raise BadInput(f"calib_samples {self.calib_samples} must be at least 1")


# -- fake-quant modules -----------------------------------------------------------------------------
def _weight_fq(bits: int) -> Any:
    import torch
    import torch.ao.quantization as tq

    lo, hi = (-128, 127) if bits == 8 else (-8, 7)
    return tq.FakeQuantize(observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=lo, quant_max=hi,
                           dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)


def _act_fq() -> Any:
    import torch
    import torch.ao.quantization as tq

    return tq.FakeQuantize(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                           dtype=torch.quint8, qscheme=torch.per_tensor_affine)


def _fq_layer_class() -> type:
    import torch
    import torch.nn.functional as F

    class FakeQuantLayer(torch.nn.Module):
        """A Conv/Linear whose weight (and, for INT8, input and output) pass through FakeQuantize."""

        def __init__(self, layer: Any, bits: int) -> None:
            super().__init__()
            self.layer = layer
            self.bits = bits
            self.weight_fq = _weight_fq(bits)
            self.input_fq = _act_fq() if bits == 8 else None
            self.output_fq = _act_fq() if bits == 8 else None

        def forward(self, x: Any) -> Any:
            if self.input_fq is not None:
                x = self.input_fq(x)
            w = self.weight_fq(self.layer.weight)
            if isinstance(self.layer, torch.nn.Linear):
                y = F.linear(x, w, self.layer.bias)
            else:
                y = self.layer._conv_forward(x, w, self.layer.bias)
            return self.output_fq(y) if self.output_fq is not None else y

        def baked(self) -> Any:
            """The plain layer with its weight rounded to the learned grid (for INT4 export)."""
            with torch.no_grad():
                self.weight_fq.disable_observer()
                self.layer.weight.copy_(self.weight_fq(self.layer.weight))
            return self.layer

    return FakeQuantLayer


def quantizable(m: Any) -> bool:
    import torch

    return isinstance(m, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d)


def insert_fake_quant(module: Any, bits: int) -> int:
    """Replace every Conv1d/Conv2d/Linear child by a FakeQuantLayer, in place; returns the count."""
    cls = _fq_layer_class()
    count = 0
    for name, child in list(module.named_children()):
        if quantizable(child):
            setattr(module, name, cls(child, bits))
            count += 1
        elif not isinstance(child, cls):
            count += insert_fake_quant(child, bits)
    return count


def bake_fake_quant(module: Any) -> None:
    """Swap every FakeQuantLayer back to its plain layer with grid-rounded weights, in place."""
    for name, child in list(module.named_children()):
        if hasattr(child, "baked") and hasattr(child, "weight_fq"):
            setattr(module, name, child.baked())
        else:
            bake_fake_quant(child)


def fold_batchnorm(module: Any) -> Any:
    """Fold eval-mode BatchNorm into the convolution that feeds it (returns a new module)."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = module.eval()
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception:  # not traceable (data-dependent control flow): fold nothing
        return module
    mods = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(mods.get(node.target), torch.nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0] if node.args else None
        if getattr(prev, "op", None) != "call_module" or len(prev.users) != 1:
            continue
        conv = mods.get(prev.target)
        if not isinstance(conv, torch.nn.Conv1d | torch.nn.Conv2d):
            continue
        fused = fuse_conv_bn_eval(conv, mods[node.target])
        _set_submodule(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        folded += 1
    if not folded:
        return module
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()  # the folded BatchNorms
    return gm


def _set_submodule(root: Any, target: str, new: Any) -> None:
    parent_name, _, attr = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


# -- the step ---------------------------------------------------------------------------------------
@register_step("qat")
def qat(source: Any, config: QatConfig, data: Any, out: str | Path | None = None, eval_data: Any = None,
        quiet: bool = False, fresh: bool = False) -> Any:
    """Fake-quant fine-tune ``source`` on ``data`` and write ``out`` (.onnx, quantized).

    Returns a CompressResult whose report compares QAT with PTQ (same bits, same data) and FP32 on
    the held-out data, all run in ONNX Runtime."""
    import copy
    import shutil

    import torch

    from edgeship.compress import common, train
    from edgeship.core.registry import require

    require("torch.ao.quantization", "core", "torch.ao quantization")
    out_path = common.check_output(out)
    if out_path is not None and out_path.suffix != ".onnx":
        raise BadInput(f"qat writes a quantized ONNX model; give -o {out_path.with_suffix('.onnx').name}")
    if data is None:
        raise BadInput("qat needs training data: give --data (e.g. data:digits-train or an .npz with labels)")
    src = common.resolve_source(source)
    ds = common.load_training_data(data, src)
    alpha = train.resolve_alpha(config.alpha, src.task, ds)
    train.seed_everything(config.seed)
    teacher = src.module.eval()
    student = fold_batchnorm(copy.deepcopy(teacher))
    layers = insert_fake_quant(student, config.bits)
    if layers == 0:
        raise BadInput("the model has no Conv1d/Conv2d/Linear layer to quantize")
    with torch.no_grad():  # calibrate the observers before training so the first steps see sane ranges
        student.train()
        for i, (feeds, _) in enumerate(train.batches(ds, config.batch_size, 0, config.seed)):
            if i >= 4:
                break
            train._outputs(student, feeds, list(src.example_inputs))
    settings = train.TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
                                   max_steps=config.max_steps, temperature=config.temperature, alpha=alpha)
    ckpt = common.default_checkpoint_dir(out_path, "qat")
    if fresh and ckpt is not None and ckpt.exists():
        shutil.rmtree(ckpt)
    run_key = f"qat:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
    fit_report = train.fit(student, teacher, ds, list(src.example_inputs), src.task, settings, checkpoint_dir=ckpt,
                           run_key=run_key, description=f"QAT int{config.bits}", quiet=quiet)
    student.apply(_freeze)
    report: dict[str, Any] = {"stage": "qat", "config": config.to_dict(), "source": src.name, "bits": config.bits,
                              "quantized_layers": layers, "data": ds.name, "alpha": alpha,
                              "train": fit_report.to_dict()}
    with tempfile.TemporaryDirectory(prefix="edgeship-qat-") as tmp_dir:
        tmp = Path(tmp_dir)
        target = out_path or tmp / "qat.onnx"
        report.update(export_quantized(src, student, config.bits, target, tmp))
        ev = common.eval_dataset(src, eval_data)
        comparison: dict[str, Any] = {}
        if ev is not None:
            comparison["qat"] = evaluate_onnx(target, src, ev)
            if config.compare_ptq:
                ptq_path = tmp / f"ptq-int{config.bits}.onnx"
                build_ptq(src, config.bits, ptq_path, ds.head(config.calib_samples), tmp)
                comparison["ptq"] = evaluate_onnx(ptq_path, src, ev)
                comparison["ptq_method"] = PTQ_METHODS[config.bits]
            comparison["data"] = ev.name
            report["comparison"] = comparison
        qat_src = common.clone_source(src, student, f"+qat{config.bits}")
        model = None
        if out_path is not None:
            from edgeship.core.artifact import Model, Step, now
            from edgeship.core.onnx_file import inspect

            step = Step(stage="qat", source=src.name, config=config.to_dict(), at=now())
            facts = {"precision": f"int{config.bits}", "qat": {k: v for k, v in report.items() if k != "config"}}
            model = Model(out_path, "onnx", inspect(out_path), (step,), facts).save()
    return common.CompressResult(qat_src, model, report)


def _freeze(m: Any) -> None:
    import torch.ao.quantization as tq

    if isinstance(m, tq.FakeQuantize):
        m.disable_observer()


PTQ_METHODS = {8: "onnxruntime.quantization static QDQ, per-channel int8 weights, uint8 activations, MinMax",
               4: "round-to-nearest per-channel symmetric int4 weights ([-8,7]), INT4 DequantizeLinear"}


def export_quantized(src: Any, student: Any, bits: int, out: Path, tmp: Path) -> dict[str, Any]:
    """Write the trained fake-quant ``student`` as a quantized ONNX model at ``out``."""
    from edgeship.compress import common

    if bits == 8:
        raw = tmp / "qat-qdq.onnx"
        _legacy_export(src, student.eval(), raw)
        folded = fold_weight_quantizers(raw, out)
        return {"weights_stored_int8": folded, "onnx": _op_counts(out)}
    import copy

    from edgeship.compress.qat import int4

    plain = copy.deepcopy(student).eval()
    bake_fake_quant(plain)
    grids = _grids(plain)
    fp32 = tmp / "baked-fp32.onnx"
    _legacy_export(src, plain, fp32)
    info = int4.write_int4(fp32, grids, out)
    common.check_onnx_parity(common.clone_source(src, plain, "+baked"), out)
    return {**info, "onnx": _op_counts(out)}


def _grids(module: Any) -> list[Any]:
    from edgeship.compress.qat import int4

    grids = []
    for name, m in module.named_modules():
        if quantizable(m):
            w = m.weight.detach().numpy().astype(np.float32)
            scale = int4.grid_scale(w)
            if np.allclose(int4.round_to_grid(w, scale), w, atol=1e-6):
                # The learned scale can differ slightly from max/7.5; recover it from the values.
                grids.append(int4.GridWeight(name, w, scale))
            else:
                grids.append(int4.GridWeight(name, w, _recover_scale(w)))
    return grids


def _recover_scale(w: np.ndarray) -> np.ndarray:
    """The per-channel step of weights that lie on some int4 grid: the smallest non-zero gap."""
    flat = w.reshape(w.shape[0], -1)
    scales = []
    for row in flat:
        vals = np.unique(np.abs(row[row != 0]))
        scales.append(vals.min() if vals.size else 1.0)
    # the smallest non-zero |value| is k·scale for some k; refine: choose scale so all values are integral
    out = []
    for row, s in zip(flat, scales, strict=True):
        for k in range(1, 9):
            cand = s / k
            if np.allclose(row / cand, np.round(row / cand), atol=1e-3) and np.abs(np.round(row / cand)).max() <= 8:
                out.append(cand)
                break
        else:
            out.append(s)
    return np.asarray(out, dtype=np.float32)


def _legacy_export(src: Any, module: Any, out: Path) -> None:
    import warnings

    import torch

    from edgeship.core.atomic import atomic_path

    args = tuple(src.example_inputs.values())
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=LEGACY_OPSET,
                          input_names=list(src.example_inputs), output_names=list(src.output_names),
                          dynamic_axes={**src.dynamic_axes}, do_constant_folding=True)


def fold_weight_quantizers(path: Path, out: Path) -> int:
    """Store constant weights quantized: ``QuantizeLinear(float initializer)`` becomes an int8
    initializer feeding the DequantizeLinear (the exporter leaves the float weights, 4× larger)."""
    import onnx
    from onnx import numpy_helper

    from edgeship.core import onnx_file

    model = onnx_file.load(path)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # in topological order, so Identity chains resolve
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    folded = 0
    for node in list(graph.node):
        if node.op_type != "QuantizeLinear" or not all(i in consts for i in node.input[:3]) or len(node.input) < 3:
            continue
        x, scale, zp = (consts[i] for i in node.input[:3])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * x.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis] = -1
        info = np.iinfo(zp.dtype)
        q = np.clip(np.round(x / scale.reshape(shape)) + zp.astype(np.int32).reshape(shape), info.min, info.max)
        graph.initializer.append(numpy_helper.from_array(q.astype(zp.dtype), node.output[0]))
        graph.node.remove(node)
        folded += 1
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for t in list(graph.initializer):
        if t.name not in used:
            graph.initializer.remove(t)
    for n in list(graph.node):
        if n.op_type == "Constant" and n.output[0] not in used:
            graph.node.remove(n)
    onnx.checker.check_model(model)
    onnx_file.save(model, out)
    return folded


def _op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


# -- PTQ baselines ----------------------------------------------------------------------------------
def build_ptq(src: Any, bits: int, out: Path, calib: Any, tmp: Path) -> Path:
    """Post-training quantization of the FP32 model with ``bits``, calibrated on ``calib``."""
    import copy

    from edgeship.compress import common

    plain = fold_batchnorm(copy.deepcopy(src.module).eval())
    if bits == 4:
        import torch

        from edgeship.compress.qat import int4

        with torch.no_grad():
            for m in plain.modules():
                if quantizable(m):
                    w = m.weight.detach().numpy()
                    m.weight.copy_(torch.from_numpy(int4.round_to_grid(w, int4.grid_scale(w))))
        fp32 = tmp / "ptq-baked-fp32.onnx"
        _legacy_export(src, plain, fp32)
        int4.write_int4(fp32, _grids(plain), out)
        return out
    fp32 = tmp / "ptq-fp32.onnx"
    _legacy_export(common.clone_source(src, plain, ""), plain, fp32)
    return ptq_int8(fp32, calib, out)


def ptq_int8(fp32: Path, calib: Any, out: Path) -> Path:
    """Static QDQ INT8 with onnxruntime.quantization (per-channel weights, MinMax calibration)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgeship.compress.train import _split_rows
    from edgeship.core.atomic import atomic_path

    rows, _ = _split_rows(calib)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(rows)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with atomic_path(out) as tmp:
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def evaluate_onnx(path: Path, src: Any, ds: Any) -> dict[str, Any]:
    """Accuracy / agreement / cosine of an ONNX model in ONNX Runtime against the torch FP32 model."""
    import onnxruntime as ort

    from edgeship.compress import common

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    ref, cand = [], []
    for s in ds.samples:
        ref.append(src.forward_numpy(s)[src.output_names[0]])
        cand.append(sess.run(None, {k: v for k, v in s.items() if k in wanted})[0])
    return {"size_bytes": path.stat().st_size, **common.output_summary(ref, cand, ds.labels, src.task)}
