"""Export parity: the exported ONNX graph, run in ONNX Runtime, against its reference (PyTorch eager for a
torch source, the source file in ONNX Runtime for an ONNX source), judged by the one comparison engine
(:func:`edgeship.check.judge.judge`) under the export's ``parity_gates`` — the FP32 tolerance by default.

The data is the user's, else the source's held-out data, else its example inputs plus synthetic ones
shaped like them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.check.judge import judge
from edgeship.core.artifact import IOSpec, Model
from edgeship.core.data import Dataset, load_data
from edgeship.export.config import ExportConfig
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.base import runner_for

Feeds = dict[str, np.ndarray]
Reference = Callable[[Feeds], Feeds]


@dataclasses.dataclass
class ParityData:
    feeds: list[dict[str, np.ndarray]]
    description: str
    labels: np.ndarray | None = None  # one per row, when the data has them: accuracy is recorded too


def parity_data_torch(source: TorchSource, io_spec_: IOSpec, config: ExportConfig,
                      data: str | Path | Dataset | None) -> ParityData:
    spec = data if data is not None else source.eval_data
    if spec is not None:
        ds = load_data(spec, io_spec_, limit=config.parity_samples, tokenizer=source.tokenizer)
        return ParityData(ds.samples, ds.name, ds.labels)
    feeds: list[dict[str, np.ndarray]] = [
        {k: np.asarray(v) for k, v in f.items()} for f in source.extra.get("parity_feeds") or []]
    feeds = feeds[:config.parity_samples]
    example = {k: v.detach().cpu().numpy() for k, v in source.example_inputs.items()}
    desc = "example inputs + synthetic" if not feeds else "example text + example inputs + synthetic"
    if len(feeds) < config.parity_samples:
        feeds.append(example)
    feeds.extend(synthetic_like(example, io_spec_, config.parity_samples - len(feeds)))
    return ParityData(feeds, desc)


def synthetic_like(example: dict[str, np.ndarray], io_spec_: IOSpec, n: int) -> list[dict[str, np.ndarray]]:
    """Random inputs shaped like the example (batch 2 where the batch is dynamic), floats with the example's
    mean and spread, integers within the example's range (token ids, class indices stay valid)."""
    rng = np.random.default_rng(0)
    dynamic_batch = all(
        t.shape and not isinstance(t.shape[0], int) for t in io_spec_.inputs if t.name in example)
    out = []
    for i in range(max(0, n)):
        sample = {}
        for name, ex in example.items():
            shape = list(ex.shape)
            if dynamic_batch and shape and i % 2 == 0:
                shape[0] = 2
            if ex.dtype.kind == "f":
                std = float(ex.std()) if ex.size > 1 and float(ex.std()) > 0 else 1.0
                sample[name] = (rng.standard_normal(shape) * std + float(ex.mean())).astype(ex.dtype)
            elif ex.dtype.kind in "iu":
                lo, hi = int(ex.min()), int(ex.max())
                sample[name] = rng.integers(lo, hi + 1, shape).astype(ex.dtype)
            else:
                sample[name] = np.resize(ex, shape).astype(ex.dtype)
        out.append(sample)
    return out


def parity_data_onnx(model: Model, config: ExportConfig, data: str | Path | Dataset | None,
                      shapes: dict[str, tuple[int, ...]] | None) -> ParityData:
    ds = load_data(data if data is not None else "data:synthetic", model.io, shapes=shapes,
                   limit=config.parity_samples)
    return ParityData(ds.samples, ds.name, ds.labels)


def ort_reference(model: Model) -> Reference:
    """The source ONNX file in its runtime, as the reference of an ONNX → ONNX export."""
    return runner_for(model).infer


def check_parity(reference: Reference, ref_names: list[str], path: Path, io_spec_: IOSpec, pdata: ParityData,
                 config: ExportConfig, task: str) -> dict[str, Any]:
    """Reference vs ONNX Runtime on every sample, judged per output under ``parity_gates``.

    Outputs correspond by position: names may have been made unique on the ONNX side. The result is
    the sidecar's ``parity`` record: passed, why, worst_output, gates, data, samples, outputs."""
    out_names = io_spec_.output_names
    # All reference runs first, then all ONNX Runtime runs: interleaved, ORT's spinning worker threads
    # starve PyTorch's (measured 1.5 s instead of 30 ms per EfficientNet sample on 2 cores).
    with single_thread_torch():
        ref_outputs = [reference(feed) for feed in pdata.feeds]
    refs = [{name: np.asarray(r[ref_name]) for ref_name, name in zip(ref_names, out_names, strict=True)}
            for r in ref_outputs]
    with runner_for(Model(path, "onnx", io_spec_)) as runner:
        cands = [runner.infer(feed) for feed in pdata.feeds]
    verdict = judge(refs, cands, config.parity_gates, task=task, labels=pdata.labels, name=str(path))
    per_output = {name: {**metrics, **verdict.per_output[name]} for name, metrics in verdict.outputs.items()}
    if verdict.status == "error":  # shapes differ: the ONNX graph computes something else
        why = f"outputs differ from the reference ({verdict.why})"
        worst = verdict.worst_output or (out_names[0] if out_names else None)
    else:
        why = verdict.why if not verdict.passed else "all outputs within " + ", ".join(verdict.gates)
        worst = verdict.worst_output
    return {
        "passed": verdict.passed,
        "why": why,
        "worst_output": worst,
        "gates": verdict.gates,
        "data": pdata.description,
        "samples": len(pdata.feeds),
        "outputs": per_output,
    }


@contextlib.contextmanager
def single_thread_torch() -> Iterator[None]:
    """PyTorch on one thread for the reference runs: parity needs correctness, not speed, and OpenMP's
    barriers collapse on a busy machine (EfficientNet-Lite0 eager: 0.97 s per image with 2 threads vs
    0.05 s with 1, load average 7 on 2 cores). The previous setting is restored."""
    import sys

    torch = sys.modules.get("torch")  # only a torch source has imported it; ONNX sources never need it
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
