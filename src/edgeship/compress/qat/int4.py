"""INT4 weights in ONNX: replace float weights that lie on a per-channel int4 grid by INT4
initializers behind ``DequantizeLinear`` (opset 21, which ONNX Runtime runs).

The model is exported in FP32 with its weights already rounded to the grid (``w = scale · q`` with
q in [-8, 7]); each Conv/Gemm/MatMul weight initializer is then matched, by value, to the grid it
came from (directly or transposed, as exporters write MatMul weights) and rewritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import BadInput

INT4_OPSET = 21
QMIN, QMAX = -8, 7


@dataclasses.dataclass(frozen=True)
class GridWeight:
    """A weight on an int4 grid along axis 0 (output channels): ``values = scale[:, None...] * q``."""

    name: str
    values: np.ndarray  # float32, the exported values
    scale: np.ndarray  # float32 [channels]


def grid_scale(weight: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel scale for [-8, 7] (torch's per_channel_symmetric observer rule)."""
    flat = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    scale = flat / ((QMAX - QMIN) / 2)
    return np.maximum(scale, np.float32(1e-8)).astype(np.float32)


def round_to_grid(weight: np.ndarray, scale: np.ndarray) -> np.ndarray:
    s = scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return (np.clip(np.round(weight / s), QMIN, QMAX) * s).astype(np.float32)


def write_int4(fp32_path: Path, grids: list[GridWeight], out: Path) -> dict[str, Any]:
    """Rewrite ``fp32_path`` with INT4 weights for ``grids``; returns what was converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper, version_converter

    from edgeship.core import onnx_file

    model = onnx_file.load(fp32_path)
    if max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0) < INT4_OPSET:
        try:
            model = version_converter.convert_version(model, INT4_OPSET)
        except Exception as exc:  # the converter raises bare RuntimeErrors naming the op
            raise BadInput(f"cannot raise the model to opset {INT4_OPSET} for INT4 weights: "
                           f"{str(exc).splitlines()[0][:200]}") from None
    model.ir_version = max(model.ir_version, 10)
    inits = {t.name: t for t in model.graph.initializer}
    converted, left = [], []
    used: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        wname = node.input[1]
        if wname not in inits or wname in used:
            continue
        w = numpy_helper.to_array(inits[wname])
        match = _match(w, grids, node)
        if match is None:
            left.append(wname)
            continue
        grid, axis = match
        scale = grid.scale
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), QMIN, QMAX).astype(np.int8)
        qname, sname = f"{wname}_int4", f"{wname}_scale"
        model.graph.initializer.remove(inits[wname])
        model.graph.initializer.append(helper.make_tensor(qname, TensorProto.INT4, list(q.shape), q.flatten().tolist()))
        model.graph.initializer.append(numpy_helper.from_array(scale.astype(np.float32), sname))
        dq = helper.make_node("DequantizeLinear", [qname, sname], [wname], name=f"{wname}_dequantize", axis=axis)
        model.graph.node.insert(0, dq)
        used.add(wname)
        converted.append({"weight": wname, "node": node.op_type, "shape": list(q.shape), "axis": axis})
    if not converted:
        raise BadInput("no weight of the exported model lies on the int4 grid; nothing to write as INT4")
    onnx.checker.check_model(model)
    onnx_file.save(model, out)
    return {"int4_weights": len(converted), "float_weights_left": left}


def _match(w: np.ndarray, grids: list[GridWeight], node: Any) -> tuple[GridWeight, int] | None:
    for g in grids:
        if w.shape == g.values.shape and np.array_equal(w, g.values):
            return g, 0
        if w.ndim == 2 and w.shape == g.values.shape[::-1] and np.array_equal(w, g.values.T):
            return g, 1  # MatMul keeps W as [in, out]: channels along axis 1
    return None
