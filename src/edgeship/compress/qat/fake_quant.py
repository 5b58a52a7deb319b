"""Fake quantization for QAT: every Conv1d/Conv2d/Linear becomes a ``FakeQuantLayer`` whose weight (and,
for INT8, input and output) passes through torch.ao ``FakeQuantize`` while training.

- ``bits=8``: per-tensor affine uint8 activations, per-channel symmetric int8 weights;
- ``bits=4``: weight-only, per-channel symmetric int4 ([-8, 7]).
"""

from __future__ import annotations

from typing import Any


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


def freeze_observers(m: Any) -> None:
    """Stop a FakeQuantize from updating its ranges (``module.apply(freeze_observers)`` after training)."""
    import torch.ao.quantization as tq

    if isinstance(m, tq.FakeQuantize):
        m.disable_observer()
