"""Tiny models for tests, built in code: an ONNX MLP and a small torch CNN with a factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_onnx(path: Path, seed: int = 0, dynamic_batch: bool = True) -> Path:
    """A 2-layer MLP (MatMul+Add+Relu, MatMul+Add) taking float32 [N,16] to [N,4], saved to ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((16, 32)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(32).astype(np.float32) * 0.1
    w2 = rng.standard_normal((32, 4)).astype(np.float32) * 0.3
    b2 = rng.standard_normal(4).astype(np.float32) * 0.1
    batch: int | str = "batch" if dynamic_batch else 1
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
            helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
            helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
            helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
            helper.make_node("Add", ["h3", "b2"], ["logits"], name="fc2_bias"),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


TORCH_FACTORY_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def build():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(1, 1, 8, 8),)
'''


def torch_factory_file(folder: Path) -> str:
    """Write a ``net.py`` with a ``build()`` factory; returns the ``net.py:build`` source spec."""
    f = folder / "net.py"
    f.write_text(TORCH_FACTORY_SOURCE)
    return f"{f}:build"
