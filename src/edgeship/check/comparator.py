"""The comparator: run a reference and candidates on the same inputs and judge each candidate.

The reference is a golden ``.npz`` (its inputs are the data), a PyTorch source (``zoo:minilm``,
``net.py:build``) run eagerly, or a model file run on its runtime. Candidates are model files run on
their own runtimes (``--runtime`` chooses among several). For each candidate and output: the metrics
of ``edgeship.check.metrics``; gates come from the user or default by precision; the tightest
tolerance that would have passed is reported, so a failing user learns how far off they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeship.check.gates import Gate, default_gates, parse_gates
from edgeship.check.judge import CandidateResult, judge
from edgeship.core import golden as golden_io
from edgeship.core.artifact import IOSpec, Model
from edgeship.core.config import Config
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, NotRunnableHere
from edgeship.sources.subject import Subject, resolve_subject
from edgeship.targets.base import Runner, runner_for_subject

Feeds = dict[str, np.ndarray]


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
        return all(c.status == "pass" for c in self.candidates)

    @property
    def exit_code(self) -> int:
        """0 every candidate passed; 1 a gate failed; 2 a candidate could not be run or compared
        (an error, or a runtime that cannot run here: never counted as passed)."""
        if any(c.status in ("error", "not_run") for c in self.candidates):
            return 2
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "data": self.data, "samples": self.samples, "rows": self.rows,
                "passed": self.passed, "candidates": [c.to_dict() for c in self.candidates]}

    def save_golden(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        return golden_io.save_golden(path, self.inputs, self.reference_outputs, self.labels, meta)


def run_all(runner: Runner, samples: list[Feeds], progress: Callable[[], None] | None = None) -> list[Feeds]:
    outs = []
    with runner as r:
        for s in samples:
            outs.append(r.infer(s))
            if progress is not None:
                progress()
    return outs


@dataclasses.dataclass(frozen=True)
class CheckConfig(Config):
    """How to check. ``gates`` replace the defaults by precision (empty: the defaults); ``precision``
    overrides what the candidate files record; ``shapes`` fix symbolic dims of synthetic data."""

    kind: ClassVar[str] = "check"

    gates: tuple[str, ...] = ()
    limit: int | None = None
    runtime: str | None = None
    threads: int | None = None
    precision: str | None = None
    shapes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    trust_pickle: bool = False

    def validate(self) -> None:
        parse_gates(self.gates)
        if self.limit is not None and self.limit < 1:
            raise BadInput(f"limit {self.limit}: give a positive number of samples")


def check(reference: Any, candidates: list[Any], data: str | Dataset | None = None,
          config: CheckConfig | None = None, *, progress: bool = False, **options: Any) -> CheckResult:
    """Run ``reference`` and each candidate on the same inputs; judge each candidate by its gates.

    ``config`` (or its fields as keywords: ``gates=``, ``limit=``, ``runtime=`` ...) says how. Gates
    apply to every candidate; without them each candidate gets the defaults of its precision (see
    ``edgeship.check.gates``). Raises BadInput on unusable inputs; gate failures are results.
    """
    config = (config or CheckConfig()).replace(**{k: v for k, v in options.items() if v is not None})
    gates, shapes, limit = config.gates, config.shapes, config.limit
    runtime, threads, precision, trust_pickle = config.runtime, config.threads, config.precision, config.trust_pickle
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
        ds = load_data(data, io, shapes=shapes, limit=limit, tokenizer=ref.tokenizer)
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
        return run_all(runner_for_subject(subj, **opts), samples)
    from edgeship.core.progress import progress_bar

    with progress_bar(f"{label}: {Path(subj.name).name}", total=len(samples)) as advance:
        return run_all(runner_for_subject(subj, **opts), samples, advance)


def _judge(subj: Subject, ref: Subject, samples: list[Feeds], ref_outs: list[Feeds], labels: np.ndarray | None,
           user_gates: list[Gate] | None, threads: int | None, progress: bool) -> CandidateResult:
    task = subj.task if subj.task != "other" else ref.task
    gates = user_gates or default_gates(subj.precision, task, subj.gates or ref.gates)
    try:
        runner = runner_for_subject(subj, **({"threads": threads} if threads else {}))
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
