"""Tiny ONNX graphs built in code for the hardware-map tests (no training, no export), and ``write``,
which saves one to a file. (A helper module, not a conftest: tests/ship import
their own conftest by name.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def conv_chain(ops: list[str], channels: int = 4, size: int = 8, batch: int | str = 1, opset: int = 18,
               int8: bool = False):
    """x -> Conv -> <op> -> Conv -> <op> ... : a Conv (3x3, constant weights) before every op in
    ``ops`` ("Relu", "HardSwish", ...). ``int8`` wraps every tensor in a QuantizeLinear /
    DequantizeLinear pair, the way a QDQ-quantized graph looks."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"

    def qdq(t: str, i: int) -> str:
        if not int8:
            return t
        for name, val in ((f"s{i}", np.float32(0.05)), (f"z{i}", np.int8(0))):
            if name not in {t.name for t in inits}:
                inits.append(numpy_helper.from_array(np.array(val), name))
        nodes.append(helper.make_node("QuantizeLinear", [t, f"s{i}", f"z{i}"], [f"{t}_q"], name=f"q_{t}"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{t}_q", f"s{i}", f"z{i}"], [f"{t}_dq"], name=f"dq_{t}"))
        return f"{t}_dq"

    cur = qdq(x, 0)
    for i, op in enumerate(ops):
        w = numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [cur, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        cur = qdq(f"c{i}", 0)
        nodes.append(helper.make_node(op, [cur], [f"a{i}"], name=f"{op.lower()}{i}"))
        cur = qdq(f"a{i}", 0)
    nodes.append(helper.make_node("Identity", [cur], ["y"], name="out"))
    shape = [batch, channels, size, size]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def write(model, folder: Path, name: str = "model.onnx") -> Path:
    """Write an ONNX proto into ``folder`` and return its path."""
    import onnx

    path = folder / name
    onnx.save(model, path)
    return path


def graph_of(nodes: list, inputs: dict[str, tuple], outputs: list[str], consts: dict[str, object] | None = None,
             opset: int = 18, int_inputs: tuple[str, ...] = ()):
    """A model of ``nodes`` (onnx.helper.make_node) with float inputs of the given shapes (int64 for
    the names in ``int_inputs``; a str dim is symbolic) and constants from numpy arrays or numbers;
    the outputs' shapes are left to shape inference."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.float32) if isinstance(v, float) else np.asarray(v), k)
             for k, v in (consts or {}).items()]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64 if n in int_inputs else TensorProto.FLOAT, list(s))
           for n, s in inputs.items()]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model
