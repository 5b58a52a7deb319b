"""The comparator: run a reference and candidates on the same inputs and judge each candidate.

The reference is a golden ``.npz`` (its inputs are the data), a PyTorch source (``zoo:minilm``,
``net.py:build``) run eagerly, or a model file run on its runtime. Candidates are model files run on
their own runtimes (``--runtime`` chooses among several). For each candidate and output: the metrics
of ``edgeship.check.metrics``; gates come from the user or default by precision; the tightest
tolerance that would have passed is reported, so a failing user learns how far off they are.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.check import golden as golden_io
from edgeship.check.gates import Gate, default_gates, parse_gates
from edgeship.check.judge import CandidateResult, judge
from edgeship.core.artifact import IOSpec, Model
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, NotRunnableHere

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
    source: Any = None  # TorchSource
    golden: tuple[list[Feeds], list[Feeds], np.ndarray | None] | None = None
    eval_data: str | None = None
    runtime: str | None = None

    def runner(self, **options: Any) -> Any:
        from edgeship.targets.base import get_target, runner_for

        if self.source is not None:
            return get_target("torch").runner(self.source, threads=options.get("threads"))
        assert self.model is not None
        return runner_for(self.model, self.runtime, **options)


def precision_of(model: Model) -> str:
    """A model's numeric precision: recorded by the stage that made it, else FP32."""
    if "precision" in model.facts:
        return str(model.facts["precision"])
    for step in reversed(model.provenance):
        if step.config.get("precision"):
            return str(step.config["precision"])
    return "fp32"


def resolve_subject(spec: Any, runtime: str | None = None, trust_pickle: bool = False) -> Subject:
    """Turn a spec (path, ``zoo:`` name, Model, TorchSource) into a Subject."""
    from edgeship.zoo.base import TorchSource

    if isinstance(spec, Subject):
        return spec
    if isinstance(spec, TorchSource):
        return Subject(spec.name, spec.io, "fp32", spec.task, spec.gate, source=spec, eval_data=spec.eval_data)
    if isinstance(spec, Model):
        task = str(spec.facts.get("task", "other"))
        return Subject(str(spec.path), spec.io, precision_of(spec), task, tuple(spec.facts.get("gates", ())),
                       model=spec, runtime=runtime)
    text = str(spec)
    if text.endswith(".npz") and golden_io.is_golden(text):
        ins, outs, labels, meta = golden_io.load_golden(text)
        io = IOSpec(tuple(_spec_of(n, a) for n, a in ins[0].items()),
                    tuple(_spec_of(n, a) for n, a in outs[0].items()))
        return Subject(text, io, "fp32", meta.get("task", "other"), tuple(meta.get("gates", ())),
                       golden=(ins, outs, labels))
    if text.startswith("zoo:") or ".py:" in text or text.endswith(".pt2") or (Path(text).is_dir() and
                                                                              (Path(text) / "config.json").exists()):
        from edgeship.export.sources import load_source

        src = load_source(text, trust_pickle=trust_pickle)
        return resolve_subject(src, runtime)
    return resolve_subject(Model.open(text), runtime)


def _spec_of(name: str, a: np.ndarray) -> Any:
    from edgeship.core.artifact import TensorSpec

    return TensorSpec(name, str(a.dtype), tuple(a.shape))


@dataclasses.dataclass
class CheckResult:
    reference: str
    data: str
    samples: int
    rows: int
    candidates: list[CandidateResult]
    reference_outputs: list[Feeds] = dataclasses.field(default_factory=list, repr=False)
    inputs: list[Feeds] = dataclasses.field(default_factory=list, repr=False)
    labels: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(c.status in ("pass",) for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "data": self.data, "samples": self.samples, "rows": self.rows,
                "passed": self.passed, "candidates": [c.to_dict() for c in self.candidates]}

    def save_golden(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        return golden_io.save_golden(path, self.inputs, self.reference_outputs, self.labels, meta)


def run_all(runner: Any, samples: list[Feeds], progress: Any = None) -> list[Feeds]:
    outs = []
    with runner as r:
        for s in samples:
            outs.append(r.infer(s))
            if progress is not None:
                progress()
    return outs


def check(reference: Any, candidates: list[Any], data: str | Dataset | None = None,
          gates: list[str] | tuple[str, ...] | None = None, shapes: dict[str, tuple[int, ...]] | None = None,
          limit: int | None = None, runtime: str | None = None, threads: int | None = None,
          trust_pickle: bool = False, progress: bool = False, precision: str | None = None) -> CheckResult:
    """Run ``reference`` and each candidate on the same inputs; judge each candidate by its gates.

    Gates apply to every candidate; without them each candidate gets the defaults of its precision
    (``precision`` overrides what the files record; see ``edgeship.check.gates``). Raises BadInput on
    unusable inputs; gate failures are results.
    """
    ref = resolve_subject(reference, trust_pickle=trust_pickle)
    subjects = [resolve_subject(c, runtime, trust_pickle) for c in candidates]
    if precision:
        for s in subjects:
            s.precision = precision
    user_gates = parse_gates(gates) if gates else None
    io = ref.io if ref.golden is None else (subjects[0].io if subjects else ref.io)

    if ref.golden is not None:
        samples, ref_outs, labels = ref.golden
        if data is not None:
            raise BadInput("the reference is a golden .npz: its inputs are the data; drop --data")
        samples = samples[:limit] if limit else samples
        ref_outs = ref_outs[: len(samples)]
        data_name = ref.name
        for s in subjects:
            _fit_golden_inputs(samples, s.io, ref.name)
    else:
        data = data if data is not None else ref.eval_data
        if data is None:
            raise BadInput("no data to compare on; give --data (data:NAME, an .npz, a folder of .npy) "
                           "or data:synthetic with --shape")
        ds = load_data(data, io, shapes=shapes, limit=limit)
        samples, labels, data_name = ds.samples, ds.labels, ds.name
        ref_outs = _run(ref, samples, threads, progress, "reference")
    rows = sum(next(iter(o.values())).shape[0] for o in ref_outs) if ref_outs else 0
    if labels is not None and len(labels) != rows:
        labels = None  # labels for another sample count: accuracy cannot be computed

    results = []
    for subj in subjects:
        results.append(_judge(subj, ref, samples, ref_outs, labels, user_gates, threads, progress))
    return CheckResult(ref.name, data_name, len(samples), rows, results, ref_outs, samples, labels)


def _fit_golden_inputs(samples: list[Feeds], io: IOSpec, where: str) -> None:
    from edgeship.core.data import validate_data

    validate_data(Dataset(where, samples), io)


def _run(subj: Subject, samples: list[Feeds], threads: int | None, progress: bool, label: str) -> list[Feeds]:
    opts = {"threads": threads} if threads else {}
    if not progress:
        return run_all(subj.runner(**opts), samples)
    from edgeship.core.progress import progress_bar

    with progress_bar(f"{label}: {Path(subj.name).name}", total=len(samples)) as advance:
        return run_all(subj.runner(**opts), samples, advance)


def _judge(subj: Subject, ref: Subject, samples: list[Feeds], ref_outs: list[Feeds], labels: np.ndarray | None,
           user_gates: list[Gate] | None, threads: int | None, progress: bool) -> CandidateResult:
    task = subj.task if subj.task != "other" else ref.task
    gates = user_gates or default_gates(subj.precision, task, subj.gates or ref.gates)
    try:
        runner = subj.runner(**({"threads": threads} if threads else {}))
        if progress:
            from edgeship.core.progress import progress_bar

            with progress_bar(f"candidate: {Path(subj.name).name}", total=len(samples)) as advance:
                outs = run_all(runner, samples, advance)
        else:
            outs = run_all(runner, samples)
    except EdgeshipError as exc:
        status = "not_run" if isinstance(exc, NotRunnableHere) else "error"
        return CandidateResult(subj.name, subj.precision, status, gates=[str(g) for g in gates], why=str(exc))
    res = judge(ref_outs, outs, gates, precision=subj.precision, task=ref.task, labels=labels, name=subj.name)
    res.load_time_s = runner.load_time_s
    if not res.passed and ref.model is not None and ref.model.format == "onnx" and subj.model is not None \
            and subj.model.format == "onnx":
        res.first_divergence = localize(ref.model, subj.model, samples)
    return res


def localize(reference: Model, candidate: Model, samples: list[Feeds], max_samples: int = 8) -> dict[str, Any] | None:
    """Where the error first appears, or None when the graphs share no tensor that diverges."""
    from edgeship.check.localize import first_divergence

    try:
        div = first_divergence(reference, candidate, samples[:max_samples])
    except Exception:  # localisation is a diagnosis aid; a graph it cannot expose must not hide the verdict
        return None
    return div.to_dict() if div else None
