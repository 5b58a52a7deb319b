"""What prune, distill and QAT share: resolving the source, the result they return, and counting what
a compressed module holds (parameters, MACs, zeroed weights).

The rest of what they share has its own module: ``training_data`` (what they train on),
``train`` (the loop), ``output`` (writing .onnx / .pt2 files and checkpoints) and ``evaluate``
(accuracy against the original model, through edgeship.check's one comparison engine).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.sources.torch_source import TorchSource


@dataclasses.dataclass
class CompressResult:
    """What a compression step produced: the module in memory, the file (when asked) and a report."""

    source: TorchSource  # wraps the compressed module (eval mode)
    model: Model | None  # the written file (.onnx / .pt2), None when no output path was given
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": None if self.model is None else str(self.model.path), **self.report}


def resolve_source(spec: str | Path | TorchSource, trust_pickle: bool = False) -> TorchSource:
    """A TorchSource from a TorchSource, or from a spec (zoo:NAME, file.py:factory, .pt2, HF folder)."""
    from edgeship.sources.resolve import resolve_torch

    return resolve_torch(spec, trust_pickle=trust_pickle, what="compression")


def clone_source(source: TorchSource, module: Any, name_suffix: str) -> TorchSource:
    """A TorchSource like ``source`` around another module (the compressed one)."""
    return dataclasses.replace(source, name=f"{source.name}{name_suffix}", module=module.eval(),
                               extra=dict(source.extra))


def copy_module(module: Any) -> Any:
    return copy.deepcopy(module)


# -- measuring ---------------------------------------------------------------------------------------
def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def count_macs(module: Any, example_inputs: dict[str, Any]) -> int | None:
    """Multiply-accumulates of one forward on the example inputs (torch-pruning's counter)."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None
    args = tuple(example_inputs.values())
    try:
        macs, _ = tp.utils.count_ops_and_params(module, args)
    except Exception:  # the counter traces hooks; some exotic modules defeat it, which is not fatal
        return None
    return int(macs)


def size_change(before: Any, after: Any, example_inputs: dict[str, Any], names: tuple[str, str]) -> dict[str, Any]:
    """Parameters and MACs of two modules and their ratio, as the reports show them (``names``: what
    the two are called there, e.g. ("before", "after") or ("teacher", "student"))."""
    counts = {names[0]: (count_params(before), count_macs(before, example_inputs)),
              names[1]: (count_params(after), count_macs(after, example_inputs))}
    (p0, m0), (p1, m1) = counts.values()
    return {"params": {names[0]: p0, names[1]: p1, "ratio": round(p1 / p0, 4)},
            "macs": {names[0]: m0, names[1]: m1, "ratio": round(m1 / m0, 4) if m0 and m1 else None}}


def weight_sparsity(module: Any) -> dict[str, Any]:
    """Zeros among the weights of Conv/Linear layers (what unstructured pruning produces)."""
    import torch

    zeros = total = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d | torch.nn.Linear):
            w = m.weight.detach()
            zeros += int((w == 0).sum())
            total += w.numel()
    return {"weight_zeros": zeros, "weights": total, "sparsity": round(zeros / total, 4) if total else 0.0}
