"""How far a compressed model is from the original on held-out data: accuracy (with labels), top-1
agreement, cosine. The numbers come from edgeship.check's comparison engine (``judge``), the same
that ``edgeship check`` reports; the ONNX files run through the ONNX Runtime runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import InternalError
from edgeship.sources.torch_source import TorchSource

# What the reports show of the engine's metrics.
REPORTED = ("accuracy", "ref_accuracy", "accuracy_drop", "top1_agreement", "cosine_mean", "cosine_min", "max_abs")


def eval_dataset(source: TorchSource, spec: str | Dataset | None, limit: int | None = None) -> Dataset | None:
    """The held-out data to report accuracy on: given, or the source's own."""
    spec = spec or source.eval_data
    if spec is None:
        return None
    if isinstance(spec, Dataset):
        return spec
    return load_data(spec, source.io, limit=limit, tokenizer=source.extra.get("tokenizer"))


def evaluate_torch(source: TorchSource, reference: TorchSource, ds: Dataset | None) -> dict[str, Any]:
    """Accuracy (with labels) / agreement / cosine of ``source``'s first output against ``reference``'s."""
    if ds is None:
        return {}
    ref = [reference.forward_numpy(s)[reference.output_names[0]] for s in ds.samples]
    cand = [source.forward_numpy(s)[source.output_names[0]] for s in ds.samples]
    return output_summary(ref, cand, ds.labels, source.task)


def evaluate_onnx(path: Path, reference: TorchSource, ds: Dataset) -> dict[str, Any]:
    """The same for an ONNX model run in ONNX Runtime (its first output), with its file size."""
    from edgeship.targets.onnxruntime.runner import OrtRunner

    ref = [reference.forward_numpy(s)[reference.output_names[0]] for s in ds.samples]
    with OrtRunner(path) as runner:
        cand = [next(iter(runner.infer(s).values())) for s in ds.samples]
    return {"size_bytes": path.stat().st_size, **output_summary(ref, cand, ds.labels, reference.task)}


def output_summary(ref: list[np.ndarray], cand: list[np.ndarray], labels: np.ndarray | None,
                   task: str) -> dict[str, Any]:
    """The reported metrics of one output (a list of arrays per sample), rounded to 6 digits."""
    from edgeship.check.judge import judge

    verdict = judge([{"output": r} for r in ref], [{"output": c} for c in cand], gates=[], task=task, labels=labels)
    if verdict.status == "error":
        raise InternalError(f"the compressed model's outputs cannot be compared with the original's: {verdict.why}")
    return {k: (round(float(v), 6) if isinstance(v, float | np.floating) else v)
            for k, v in verdict.summary.items() if k in REPORTED}
