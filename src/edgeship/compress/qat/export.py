"""Writing a QAT-trained module as a quantized ONNX model.

- ``bits=8``: observers off, the legacy exporter (opset 17) writes QuantizeLinear/DequantizeLinear
  pairs, which ONNX Runtime fuses into QLinearConv / QLinearMatMul kernels; constant weights are then
  stored as int8 initializers (``fold_weight_quantizers``);
- ``bits=4``: the trained weights, rounded to their learned grid, are written as INT4 initializers
  behind DequantizeLinear (opset 21, ``qat/int4.py``) and checked against the torch module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress.qat.fake_quant import bake_fake_quant, quantizable
from edgeship.sources.torch_source import TorchSource

LEGACY_OPSET = 17


def _export_int8(src: TorchSource, student: Any, out: Path, tmp: Path) -> dict[str, Any]:
    raw = tmp / "qat-qdq.onnx"
    legacy_export(src, student.eval(), raw)
    folded = fold_weight_quantizers(raw, out)
    return {"weights_stored_int8": folded, "onnx": op_counts(out)}


def _export_int4(src: TorchSource, student: Any, out: Path, tmp: Path) -> dict[str, Any]:
    import copy

    from edgeship.compress import common, output
    from edgeship.compress.qat import int4

    plain = copy.deepcopy(student).eval()
    bake_fake_quant(plain)
    grids = grids_of(plain)
    fp32 = tmp / "baked-fp32.onnx"
    legacy_export(src, plain, fp32)
    info = int4.write_int4(fp32, grids, out)
    output.check_onnx_parity(common.clone_source(src, plain, "+baked"), out)
    return {**info, "onnx": op_counts(out)}


# By QatConfig.bits: (source, trained fake-quant student, out, temporary folder) -> facts.
EXPORTERS: dict[int, Callable[[TorchSource, Any, Path, Path], dict[str, Any]]] = {8: _export_int8, 4: _export_int4}


def export_quantized(src: TorchSource, student: Any, bits: int, out: Path, tmp: Path) -> dict[str, Any]:
    """Write the trained fake-quant ``student`` as a quantized ONNX model at ``out``."""
    return EXPORTERS[bits](src, student, out, tmp)


def grids_of(module: Any) -> list[Any]:
    """The int4 grid (per-channel scale) each quantizable layer's weights lie on."""
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


def legacy_export(src: TorchSource, module: Any, out: Path) -> None:
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


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
