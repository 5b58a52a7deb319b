"""The comparator: run a reference and candidates on the same inputs and judge each candidate.

The reference is a golden ``.npz`` (its inputs are the data), a PyTorch source (``zoo:minilm``,
``net.py:build``) run eagerly, or a model file run on its runtime. Candidates are model files run on
their own runtimes (``--runtime`` chooses among several). For each candidate and output: the metrics
of ``edgeship.check.metrics``; gates come from the user or default by precision; the tightest
tolerance that would have passed is reported, so a failing user learns how far off they are.

Besides the data, every check runs the stress probes (``check/probes.py``: shortest and longest
texts, constant, dark, bright, noisy and colour-cast images, inputs at the edges of the calibration
range), on the reference and on each candidate, judged by the same gates (or ``probe_gates``). With
the probe gate on (``probes=True``, the default) a candidate passes only when the data and the
probes both pass; a golden reference brings the probes it was saved with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeship.check.gates import Gate, default_gates, parse_gates
from edgeship.check.judge import CandidateResult, judge, with_probes
from edgeship.core import golden as golden_io
from edgeship.core.artifact import IOSpec, Model
from edgeship.core.config import Config
from edgeship.core.data import Dataset, load_data, run_carrying
from edgeship.core.errors import BadInput, EdgeshipError, NotRunnableHere
from edgeship.sources.subject import Subject, resolve_subject
from edgeship.targets.base import Runner, runner_for_subject

Feeds = dict[str, np.ndarray]
LABEL_METRICS = ("accuracy", "ref_accuracy", "accuracy_drop")


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
    probes: dict[str, Any] | None = None  # what probes ran (count, families, kinds, notes), None when off
    probe_golden: golden_io.GoldenProbes | None = dataclasses.field(default=None, repr=False)
    sample_ids: list[str] | None = dataclasses.field(default=None, repr=False)
    distribution: dict[str, Any] | None = None  # the data's length (or size) distribution, when it reports one

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
                "passed": self.passed, "probes": self.probes, "distribution": self.distribution,
                "candidates": [c.to_dict() for c in self.candidates]}

    def save_golden(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """The inputs, reference outputs, labels and probes as a golden .npz (a later check's reference)."""
        extra = {"sample_ids": self.sample_ids} if self.sample_ids else {}
        return golden_io.save_golden(path, self.inputs, self.reference_outputs, self.labels, {**extra, **(meta or {})},
                                     probes=self.probe_golden)


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
    probes: bool = True  # run the stress probes and fail a candidate whose probes fail
    probe_gates: tuple[str, ...] = ()  # gates for the probes (empty: the same as for the data)
    probes_gated: bool = True  # False: report the probes, do not let them decide

    def validate(self) -> None:
        parse_gates(self.gates)
        parse_gates(self.probe_gates)
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

    distribution = None
    if ref.golden is not None:
        samples, ref_outs, labels = ref.golden
        if data is not None:
            raise BadInput("the reference is a golden .npz: its inputs are the data; drop --data")
        samples = samples[:limit] if limit else samples
        ref_outs = ref_outs[: len(samples)]
        data_name = ref.name
        meta = golden_io.load_golden(ref.name)[3]
        sample_ids = (meta.get("sample_ids") or [])[: len(samples)] or None
        for s in subjects:
            _fit_golden_inputs(samples, s.io, ref.name)
        probe_golden = golden_io.load_golden_probes(ref.name) if config.probes else None
        if probe_golden is not None:
            for s in subjects:
                _fit_golden_inputs(probe_golden.inputs, s.io, f"{ref.name} (probes)")
    else:
        data = data if data is not None else ref.eval_data
        if data is None:
            raise BadInput("no data to compare on; give --data (data:NAME, an .npz, a folder of .npy) "
                           "or data:synthetic with --shape")
        ds = load_data(data, io, shapes=shapes, limit=limit, tokenizer=ref.tokenizer)
        samples, labels, data_name, sample_ids = ds.samples, ds.labels, ds.name, ds.sample_ids()
        if ds.info.get("feeds"):  # how a file's arrays were read (one feed set, samples, calls), said
            data_name = f"{ds.name} ({ds.info['feeds']})"
        if ds.carry:  # a stateful model's calls: every subject is fed what the reference was, state carried
            with runner_for_subject(ref, **({"threads": threads} if threads else {})) as carrier:
                samples = run_carrying(samples, carrier.infer, ds.carry)[0]
        distribution = ds.info.get("distribution")
        ref_outs = _run(ref, samples, threads, progress, "reference")
        probe_golden, probe_note = reference_probe_outputs(ref, io, shapes, threads) if config.probes else (None, "")
    rows = sum(next(iter(o.values())).shape[0] for o in ref_outs) if ref_outs else 0
    if labels is not None and len(labels) != rows:
        labels = None  # labels for another sample count: accuracy cannot be computed

    results = []
    for subj in subjects:
        results.append(_judge(subj, ref, samples, ref_outs, labels, user_gates, threads, progress,
                              probe_golden, sample_ids, config))
    probes_info = None
    if probe_golden is not None:
        kinds = probe_golden.kinds
        probes_info = {"probes": len(probe_golden.ids), "kinds": {k: kinds.count(k) for k in dict.fromkeys(kinds)},
                       "gated": config.probes_gated}
    elif config.probes:
        probes_info = {"probes": 0, "note": probe_note if ref.golden is None else
                       "the golden file has no probes (saved before edgeship had them)"}
    return CheckResult(ref.name, data_name, len(samples), rows, results, ref_outs, samples, labels, probes_info,
                       probe_golden, sample_ids, distribution)


def reference_probe_outputs(ref: Subject, io: IOSpec, shapes: dict[str, tuple[int, ...]] | None = None,
                            threads: int | None = None) -> tuple[golden_io.GoldenProbes | None, str]:
    """The probes and the reference's outputs on them, or (None, why) when the reference cannot run
    them (a model file whose vocabulary or length limit the default tokenizer's probes exceed)."""
    probe_set = reference_probes(ref, io, shapes)
    if not probe_set.samples:
        return None, "no probe family fits the model's inputs"
    try:
        outputs = _run(ref, probe_set.samples, threads, False, "reference (probes)")
    except Exception as exc:
        return None, f"the reference cannot run the probes ({str(exc).splitlines()[0][:200]}); judged on the data only"
    return golden_io.GoldenProbes(probe_set.samples, outputs, probe_set.ids, probe_set.kinds), ""


def reference_probes(ref: Subject, io: IOSpec, shapes: dict[str, tuple[int, ...]] | None = None) -> Any:
    """The stress probes for ``ref``: from its IO spec, task and tokenizer, with the edges of its
    calibration data's range when its source names calibration data."""
    from edgeship.check.probes import build_probes

    calib = None
    calib_spec = ref.source.calib_data if ref.source is not None else None
    if calib_spec:
        try:
            calib = load_data(calib_spec, io, shapes=shapes, limit=64, tokenizer=ref.tokenizer)
        except BadInput:
            calib = None  # probes without the calibration range: the other families still apply
    return build_probes(io, ref.task, tokenizer=ref.tokenizer, calib=calib)


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
           user_gates: list[Gate] | None, threads: int | None, progress: bool,
           probes: golden_io.GoldenProbes | None = None, sample_ids: list[str] | None = None,
           config: CheckConfig | None = None) -> CandidateResult:
    config = config or CheckConfig()
    task = subj.task if subj.task != "other" else ref.task
    gates = user_gates or default_gates(subj.precision, task, subj.gates or ref.gates, labels is not None)
    feeds = samples + (probes.inputs if probes is not None else [])
    try:
        runner = runner_for_subject(subj, **({"threads": threads} if threads else {}))
        if progress:
            from edgeship.core.progress import progress_bar

            with progress_bar(f"candidate: {Path(subj.name).name}", total=len(feeds)) as advance:
                outs = run_all(runner, feeds, advance)
        else:
            outs = run_all(runner, feeds)
    except EdgeshipError as exc:
        status = "not_run" if isinstance(exc, NotRunnableHere) else "error"
        return CandidateResult(subj.name, subj.precision, status, gates=[str(g) for g in gates], why=str(exc))
    probe_outs, outs = outs[len(samples):], outs[: len(samples)]
    res = judge(ref_outs, outs, gates, precision=subj.precision, task=ref.task, labels=labels, name=subj.name,
                sample_ids=sample_ids)
    if probes is not None and res.status in ("pass", "fail"):
        # probes have no labels: the data's accuracy gates do not apply to them
        probe_gates = parse_gates(config.probe_gates) if config.probe_gates else \
            [g for g in gates if g.metric not in LABEL_METRICS]
        verdict = judge(probes.outputs, probe_outs, probe_gates, precision=subj.precision, task=ref.task,
                        name=f"{subj.name} (probes)", sample_ids=probes.ids)
        with_probes(res, verdict, config.probes_gated, probes.kinds)
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
