"""What a PyTorch source is, whatever it came from (zoo, file.py:factory, .pt2, Hugging Face folder).

A ``TorchSource`` carries the module, example inputs in forward-argument order, output names, the
dynamic axes it supports, its task and sensible defaults (data sets, gate).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput

Task = Literal["embedding", "classification", "other"]


@dataclasses.dataclass
class TorchSource:
    name: str  # how the user named it: "zoo:minilm", "net.py:build", ...
    module: Any  # torch.nn.Module in eval mode; forward takes the inputs positionally in input order
    example_inputs: dict[str, Any]  # input name -> torch.Tensor, in forward-argument order
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]] = dataclasses.field(default_factory=dict)
    task: Task = "other"
    calib_data: str | None = None  # default data spec for calibration, e.g. "data:sentences:calib"
    eval_data: str | None = None  # default held-out data spec, e.g. "data:sentences:test"
    gate: tuple[str, ...] = ()  # default task gate for lossy variants, e.g. ("cosine_min>=0.98",)
    labels: list[str] | None = None  # class names for classifiers
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. the tokenizer

    @property
    def tokenizer(self) -> Any:
        """The source's tokenizer (Hugging Face folders, MiniLM), which text data sets use; else None."""
        return self.extra.get("tokenizer")

    @property
    def io(self) -> IOSpec:
        """IO spec with symbolic dims where dynamic axes are declared (outputs' shapes unknown)."""
        ins = []
        for name, t in self.example_inputs.items():
            axes = self.dynamic_axes.get(name, {})
            shape = tuple(axes.get(i, int(d)) for i, d in enumerate(t.shape))
            ins.append(TensorSpec(name, str(t.numpy().dtype), shape))
        outs = tuple(TensorSpec(n, "float32", ()) for n in self.output_names)
        return IOSpec(tuple(ins), outs)

    def forward_numpy(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run the module eagerly on numpy feeds; returns numpy outputs by name."""
        import numpy as np
        import torch

        args = [torch.from_numpy(np.asarray(feeds[n], order="C")) for n in self.example_inputs]
        with torch.inference_mode():
            out = self.module(*args)
        if isinstance(out, torch.Tensor):
            out = (out,)
        elif isinstance(out, dict):
            out = tuple(out.values())
        return {n: o.detach().cpu().numpy() for n, o in zip(self.output_names, out, strict=True)}


def eager_run(module: Any, inputs: dict[str, Any], where: str, fix: str) -> Any:
    """One eager run of ``module`` on its example inputs (what names its outputs); a failure is a
    one-line BadInput ending in ``fix``."""
    import torch

    try:
        with torch.inference_mode():
            return module(*inputs.values())
    except Exception as exc:  # the model's own code: any failure is the model's to fix
        text = str(exc).strip()
        first = (text.splitlines()[0] if text else type(exc).__name__)[:300]
        raise BadInput(f"{where}: the module fails on its example inputs ({type(exc).__name__}: {first}); "
                       f"{fix}") from None
