"""``bench``: warm-up, enough repetitions for a stable median, p50/p90/p99, throughput, load time,
peak RSS, file size and a system fingerprint, each model timed in a fresh process."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgeship.bench.sysinfo import system_info
from edgeship.core.artifact import Model
from edgeship.core.config import Config
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, NotRunnableHere

if TYPE_CHECKING:
    from edgeship.sources.subject import Subject

DEFAULT_WARMUP_S = 0.5
DEFAULT_MIN_TIME_S = 2.0
DEFAULT_MIN_REPS = 10  # with at least DEFAULT_MIN_TIME_S of timed runs
DEFAULT_MAX_REPS = 5000


@dataclasses.dataclass(frozen=True)
class BenchConfig(Config):
    """How to time a model: its feed (batch, sequence length, fixed shapes), the runtime and threads, and
    the timing loop's warm-up, minimum time and repetitions (see ``edgeship.bench.timing``)."""

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

    def validate(self) -> None:
        if not isinstance(self.batch, int) or self.batch < 1:
            raise BadInput(f"--batch {self.batch}: give a positive batch size")
        if self.seq is not None and self.seq < 1:
            raise BadInput(f"--seq {self.seq}: give a positive sequence length")
        if self.min_reps < 1 or self.max_reps < self.min_reps:
            raise BadInput(f"repetitions: min_reps {self.min_reps} must be ≥ 1 and ≤ max_reps {self.max_reps}")


def bench(model: Any, data: str | Dataset | None = None, config: BenchConfig | None = None,
          **options: Any) -> dict[str, Any]:
    """Benchmark one model (a Model, a model path, or a PyTorch source spec such as ``zoo:minilm``).

    ``config`` (or its fields as keywords: ``batch=``, ``seq=``, ``threads=`` ...) says how; the
    result is the JSON record ``edgeship bench --json`` prints."""
    from edgeship.sources.subject import resolve_subject

    config = (config or BenchConfig()).replace(**{k: v for k, v in options.items() if v is not None})
    batch, seq, shapes, threads, runtime = config.batch, config.seq, config.shapes, config.threads, config.runtime
    warmup_s, min_time_s, min_reps, max_reps = config.warmup_s, config.min_time_s, config.min_reps, config.max_reps
    timeout_s = config.timeout_s
    subj = resolve_subject(model, runtime)
    if subj.golden is not None:
        raise BadInput(f"{subj.name!r} is a golden .npz, not a model; bench a model file")
    threads = threads or _default_threads()
    if subj.model is not None:
        # Fail fast, in this process, on a runtime that cannot run here.
        from edgeship.targets.base import runner_for

        runner_for(subj.model, runtime)
    feeds = fixed_feeds(subj, data, batch, seq, shapes)
    with tempfile.TemporaryDirectory(prefix="edgeship-bench-") as tmp:
        feeds_path = Path(tmp) / "feeds.npz"
        np.savez(feeds_path, **feeds)
        spec = {"kind": "torch" if subj.source is not None else "model",
                "model": subj.name if subj.source is not None else str(subj.model.path),
                "runtime": runtime, "threads": threads, "feeds": str(feeds_path), "warmup_s": warmup_s,
                "min_time_s": min_time_s, "min_reps": min_reps, "max_reps": max_reps}
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "USE_TF": "0"}
        try:
            proc = subprocess.run([sys.executable, "-m", "edgeship.bench.worker", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise EdgeshipError(f"benchmark of {subj.name!r} took longer than {timeout_s:.0f} s") from None
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeshipError(f"benchmark worker for {subj.name!r} failed: {tail}")
    result = json.loads(line)
    if not result.pop("ok"):
        raise BadInput(result["error"])
    from edgeship.bench.sysinfo import busy_note

    if note := busy_note():
        result["busy"] = note
    size = subj.model.size_bytes if subj.model is not None else None
    return {"model": subj.name, "runtime": runtime or (subj.model.format if subj.model else "pytorch"),
            "batch": batch, "seq": seq, "threads": threads, "shapes": {k: list(v.shape) for k, v in feeds.items()},
            "size_bytes": size, **result, "system": system_info()}


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
