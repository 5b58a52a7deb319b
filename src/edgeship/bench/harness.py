"""``bench``: each model timed in a fresh process, on threads pinned to stated cores: load time and
first inference (cold start) apart from steady state; warm-up until stable; repetitions until the
95% confidence interval of the median is within ±2% (or a time cap, then said); p50/p90/p99 with the
coefficient of variation and outliers; CPU time per inference; throughput across batch sizes; peak
RSS; file size; instructions per inference where ``perf stat`` can count them; and the system
fingerprint and load on every result."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgeship.bench.sysinfo import load_average, timing_conditions
from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, NotRunnableHere

if TYPE_CHECKING:
    from edgeship.sources.subject import Subject

DEFAULT_WARMUP_S = 0.5
DEFAULT_MIN_TIME_S = 2.0
DEFAULT_MIN_REPS = 10  # with at least DEFAULT_MIN_TIME_S of timed runs
DEFAULT_MAX_REPS = 50_000
DEFAULT_TARGET_CI = 0.02  # ±2% of the median, at 95%
DEFAULT_MAX_TIME_S = 30.0  # the cap on one batch size's timed runs when the interval is not reached


@dataclasses.dataclass(frozen=True)
class BenchConfig(Config):
    """How to time a model: its feed (batch, sequence length, fixed shapes), the runtime and threads, and
    the timing loop's warm-up, minimum time, repetitions, target interval and time cap (see
    ``edgeship.bench.timing``)."""

    kind: ClassVar[str] = "bench"

    batch: int = 1
    seq: int | None = None
    shapes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    threads: int | None = None
    runtime: str | None = None
    warmup_s: float = DEFAULT_WARMUP_S
    min_time_s: float = DEFAULT_MIN_TIME_S
    min_reps: int = DEFAULT_MIN_REPS
    max_reps: int = DEFAULT_MAX_REPS
    timeout_s: float = 600
    target_ci: float | None = DEFAULT_TARGET_CI  # None: stop at the minimums, asking for no interval
    max_time_s: float = DEFAULT_MAX_TIME_S
    stable_warmup: bool = True
    max_warmup_s: float = 10.0
    batch_sizes: tuple[int, ...] = ()  # throughput at these batch sizes too
    pin_threads: bool = True  # pin the worker to `threads` cores of those it may use
    count_instructions: bool = True  # with perf stat, where it can count

    def validate(self) -> None:
        if not isinstance(self.batch, int) or self.batch < 1:
            raise BadInput(f"--batch {self.batch}: give a positive batch size")
        if self.seq is not None and self.seq < 1:
            raise BadInput(f"--seq {self.seq}: give a positive sequence length")
        if self.min_reps < 1 or self.max_reps < self.min_reps:
            raise BadInput(f"repetitions: min_reps {self.min_reps} must be ≥ 1 and ≤ max_reps {self.max_reps}")
        if self.target_ci is not None and not 0 < self.target_ci < 1:
            raise BadInput(f"target interval {self.target_ci}: give a fraction of the median, e.g. 0.02 for ±2%")
        if self.max_time_s < self.min_time_s:
            raise BadInput(f"time cap {self.max_time_s} s is below the minimum time {self.min_time_s} s; raise the cap")
        if any(b < 1 for b in self.batch_sizes):
            raise BadInput(f"batch sizes {list(self.batch_sizes)}: give positive batch sizes")
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"--threads {self.threads}: give a positive thread count")


def bench(model: Any, data: str | Dataset | None = None, config: BenchConfig | None = None,
          **options: Any) -> dict[str, Any]:
    """Benchmark one model (a Model, a model path, or a PyTorch source spec such as ``zoo:minilm``).

    ``config`` (or its fields as keywords: ``batch=``, ``seq=``, ``threads=`` ...) says how; the
    result is the JSON record ``edgeship bench --json`` prints (docs/benchmarks.md describes it)."""
    from edgeship.sources.subject import resolve_subject

    config = (config or BenchConfig()).replace(**{k: v for k, v in options.items() if v is not None})
    batch, seq, shapes, runtime = config.batch, config.seq, config.shapes, config.runtime
    subj = resolve_subject(model, runtime)
    if subj.golden is not None:
        raise BadInput(f"{subj.name!r} is a golden .npz, not a model; bench a model file")
    threads = config.threads or _default_threads()
    if subj.model is not None:
        # Fail fast, in this process, on a runtime that cannot run here.
        from edgeship.targets.base import runner_for

        runner_for(subj.model, runtime)
    feeds = fixed_feeds(subj, data, batch, seq, shapes)
    extra = [b for b in dict.fromkeys(config.batch_sizes) if b != batch]
    with tempfile.TemporaryDirectory(prefix="edgeship-bench-") as tmp:
        feeds_path = Path(tmp) / "feeds.npz"
        np.savez(feeds_path, **feeds)
        batch_paths = []
        for b in extra:
            batch_paths.append(str(Path(tmp) / f"feeds-{b}.npz"))
            np.savez(batch_paths[-1], **fixed_feeds(subj, data, b, seq, shapes))
        spec = {"kind": "torch" if subj.source is not None else "model",
                "model": subj.name if subj.source is not None else str(subj.model.path),
                "runtime": runtime, "threads": threads, "feeds": str(feeds_path), "batch_feeds": batch_paths,
                "warmup_s": config.warmup_s, "min_time_s": config.min_time_s, "min_reps": config.min_reps,
                "max_reps": config.max_reps, "target_ci": config.target_ci, "max_time_s": config.max_time_s,
                "stable_warmup": config.stable_warmup, "max_warmup_s": config.max_warmup_s,
                "pin": _cores_for(threads) if config.pin_threads else None}
        command, counting = _worker_command(config, Path(tmp), spec)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "USE_TF": "0"}
        from edgeship.bench.lock import timing_lock

        with timing_lock(exclusive=True):  # no other edgeship job on this machine while timing
            load_before = load_average()
            launched = time.time()
            try:
                proc = subprocess.run([*command, sys.executable, "-m", "edgeship.bench.worker", json.dumps(spec)],
                                      capture_output=True, text=True, timeout=config.timeout_s, env=env)
            except subprocess.TimeoutExpired:
                raise EdgeshipError(f"benchmark of {subj.name!r} took longer than {config.timeout_s:.0f} s") from None
        counts = _counts(Path(tmp), counting)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeshipError(f"benchmark worker for {subj.name!r} failed: {tail}")
    result = json.loads(line)
    if not result.pop("ok"):
        raise BadInput(result["error"])
    result["cold_start"]["process_to_result_s"] = result.pop("finished_at") - launched
    result["instructions"] = _instructions(counting, counts, result.pop("counted_runs", None))
    from edgeship.bench.sysinfo import busy_note

    if note := busy_note():
        result["busy"] = note
    size = subj.model.size_bytes if subj.model is not None else None
    system = {**timing_conditions(), "load_avg_before": load_before}
    return {"model": subj.name, "runtime": runtime or (subj.model.format if subj.model else "pytorch"),
            "batch": batch, "seq": seq, "threads": threads, "shapes": {k: list(v.shape) for k, v in feeds.items()},
            "size_bytes": size, **result, "system": system}


def _cores_for(threads: int) -> list[int] | None:
    """The first ``threads`` of the cores this process may use (None: as many threads as cores, or more:
    pinning would change nothing but the order)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[:threads] if threads < len(cores) else cores


def _worker_command(config: BenchConfig, tmp: Path, spec: dict[str, Any]) -> tuple[list[str], tuple[bool, str]]:
    """The prefix that runs the worker (``perf stat`` with control FIFOs when it can count here) and
    (counting, why not)."""
    if not config.count_instructions:
        return [], (False, "not asked for (count_instructions is off)")
    from edgeship.bench import counters

    ok, why = counters.perf_support(counters.INSTRUCTIONS)
    if not ok:
        return [], (False, why)
    ctl, ack = tmp / "perf-ctl", tmp / "perf-ack"
    os.mkfifo(ctl)
    os.mkfifo(ack)
    spec["perf"] = {"ctl": str(ctl), "ack": str(ack)}
    return counters.perf_command(ctl, ack, tmp / "perf.txt", (counters.INSTRUCTIONS,)), (True, "")


def _counts(tmp: Path, counting: tuple[bool, str]) -> dict[str, float | None]:
    if not counting[0]:
        return {}
    from edgeship.bench import counters

    return counters.read_counts(tmp / "perf.txt", (counters.INSTRUCTIONS,))


def _instructions(counting: tuple[bool, str], counts: dict[str, float | None], runs: int | None) -> dict[str, Any]:
    from edgeship.bench import counters

    value = counts.get(counters.INSTRUCTIONS)
    if not counting[0] or value is None or not runs:
        return {"per_inference": None, "why_not": counting[1] or "perf stat counted nothing"}
    return {"per_inference": value / runs, "counted_runs": runs, "event": counters.INSTRUCTIONS, "tool": "perf stat"}


def fixed_feeds(subj: Subject, data: str | Dataset | None, batch: int, seq: int | None,
                shapes: dict[str, tuple[int, ...]] | None) -> dict[str, np.ndarray]:
    """One fixed-shape feed: from the data (re-tokenised to ``seq`` for text), else synthetic."""
    if data is None:
        data = subj.eval_data or "data:synthetic"
    if isinstance(data, str) and data.startswith("data:synthetic"):
        shapes = dict(shapes or {})
        for spec in subj.io.inputs:  # batch and sequence options fill symbolic dims
            if spec.name not in shapes and spec.shape:
                shapes[spec.name] = spec.concrete(batch, seq)
        ds = load_data(data, subj.io, shapes=shapes, limit=1, tokenizer=subj.tokenizer)
        return ds.samples[0]
    ds = load_data(data, subj.io, shapes=shapes, limit=max(batch, 64), tokenizer=subj.tokenizer)
    feeds = ds.batch(batch, seq)
    got = next(iter(feeds.values())).shape[0]
    if got != batch:
        raise BadInput(f"data {ds.name!r} gives {got} rows of one shape, fewer than --batch {batch}")
    return feeds


def _default_threads() -> int:
    from edgeship.targets.onnxruntime.runner import default_threads

    return default_threads()


def bench_many(models: list[Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Benchmark several models one after another; a model that cannot run here is reported, not fatal."""
    out = []
    for m in models:
        try:
            out.append(bench(m, **kwargs))
        except NotRunnableHere as exc:
            out.append({"model": str(getattr(m, "path", m)), "not_run": str(exc)})
    return out


def model_path(m: Model | str | Path) -> str:
    return str(m.path) if isinstance(m, Model) else str(m)
