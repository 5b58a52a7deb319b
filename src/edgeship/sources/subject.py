"""A subject: something that produces outputs for a check or a benchmark — a model file on a runtime,
a PyTorch source run eagerly, or stored golden outputs. ``resolve_subject(spec)`` makes one from
whatever the user named; :func:`edgeship.targets.base.runner_for_subject` runs it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgeship.core import golden as golden_io
from edgeship.core.artifact import IOSpec, Model, TensorSpec
from edgeship.sources.resolve import resolve
from edgeship.sources.torch_source import TorchSource

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass
class Subject:
    """Something that produces outputs: a model on a runtime, a PyTorch source, or stored goldens."""

    name: str
    io: IOSpec
    precision: str = "fp32"
    task: str = "other"
    gates: tuple[str, ...] = ()
    model: Model | None = None
    source: TorchSource | None = None
    golden: tuple[list[Feeds], list[Feeds], np.ndarray | None] | None = None
    eval_data: str | None = None
    runtime: str | None = None

    @property
    def tokenizer(self) -> Any:
        """What text data sets are tokenised with for this subject: its PyTorch source's tokenizer."""
        return self.source.tokenizer if self.source is not None else None


def precision_of(model: Model) -> str:
    """A model's numeric precision: recorded by the stage that made it, else FP32."""
    if "precision" in model.facts:
        return str(model.facts["precision"])
    for step in reversed(model.provenance):
        if step.config.get("precision"):
            return str(step.config["precision"])
    return "fp32"


def resolve_subject(spec: Any, runtime: str | None = None, trust_pickle: bool = False) -> Subject:
    """Turn a spec (path, ``zoo:`` name, golden .npz, Model, TorchSource) into a Subject."""
    if isinstance(spec, Subject):
        return spec
    if isinstance(spec, str) and spec.endswith(".npz") and golden_io.is_golden(spec):
        ins, outs, labels, meta = golden_io.load_golden(spec)
        io = IOSpec(tuple(_spec_of(n, a) for n, a in ins[0].items()),
                    tuple(_spec_of(n, a) for n, a in outs[0].items()))
        return Subject(spec, io, "fp32", meta.get("task", "other"), tuple(meta.get("gates", ())),
                       golden=(ins, outs, labels))
    resolved = resolve(spec, trust_pickle=trust_pickle, strict=False)
    if isinstance(resolved, TorchSource):
        return Subject(resolved.name, resolved.io, "fp32", resolved.task, resolved.gate, source=resolved,
                       eval_data=resolved.eval_data)
    task = str(resolved.facts.get("task", "other"))
    return Subject(str(resolved.path), resolved.io, precision_of(resolved), task,
                   tuple(resolved.facts.get("gates", ())), model=resolved, runtime=runtime)


def _spec_of(name: str, a: np.ndarray) -> TensorSpec:
    return TensorSpec(name, str(a.dtype), tuple(a.shape))
