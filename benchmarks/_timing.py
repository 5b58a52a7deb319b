"""What the benchmark scripts share: a fixed thread count, each model file run by its target's Runner
(ONNX Runtime for .onnx, OpenVINO for IR, ...), latency measured in interleaved rounds by edgeship's
one timing loop so that load from other processes hits every variant alike, and sizes on disk."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2
Feeds = dict[str, np.ndarray]
Call = Callable[[Feeds], Any]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def model_call(path: Path, threads: int = THREADS) -> Callable[[Feeds], Feeds]:
    """A function running ``path`` on the runtime of its format with ``threads`` threads (the session
    built now, not in the first timed call); feeds with inputs the model lacks are fine."""
    from edgeship.core.artifact import Model
    from edgeship.targets.base import runner_for

    runner = runner_for(Model.open(path), threads=threads)
    runner.activate()
    return runner.infer


def interleaved_latency(calls: Mapping[str, Call], feeds: Feeds, rounds: int, per_round_s: float) -> dict[str, float]:
    """Latency (ms) of each call on ``feeds``: the best over rounds of the per-round 20th percentile
    (at least 5 runs and ``per_round_s`` per round, after 3 warm-up runs). Under load from other
    processes the uncontended runs are the ones that measure the model."""
    from edgeship.bench.timing import interleaved

    return interleaved({name: functools.partial(call, feeds) for name, call in calls.items()}, rounds=rounds,
                       runs=5, round_s=per_round_s, warmup=3, quantile=20)


def size_of(path: Path) -> int:
    """The model's bytes on disk: an ONNX file with its external data, or OpenVINO's .xml + .bin."""
    extra = path.with_suffix(".bin") if path.suffix == ".xml" else path.with_name(path.name + ".data")
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)
