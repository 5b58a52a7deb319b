"""Timing shared by the benchmark scripts: ONNX Runtime sessions on a fixed thread count, and latency
measured in interleaved rounds so that load from other processes hits every variant alike."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2
Feeds = dict[str, np.ndarray]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ort_runner(path: Path, threads: int = THREADS) -> Callable[[Feeds], Any]:
    """A function running ``path`` in ONNX Runtime (CPU, ``threads`` intra-op threads) on the feeds it
    takes (inputs the model does not have are dropped)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    return lambda feeds: sess.run(None, {k: v for k, v in feeds.items() if k in wanted})


def interleaved_latency(runners: dict[str, Callable[[Feeds], Any]], feeds: Feeds, rounds: int,
                        per_round_s: float) -> dict[str, float]:
    """Latency (ms) of each runner: the best over rounds of the per-round 20th percentile. Under load
    from other processes the uncontended runs are the ones that measure the model; interleaving
    makes every variant see the same conditions."""
    for run in runners.values():
        for _ in range(3):
            run(feeds)
    best = {name: float("inf") for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            times: list[float] = []
            t_end = time.perf_counter() + per_round_s
            while len(times) < 5 or time.perf_counter() < t_end:
                t0 = time.perf_counter()
                run(feeds)
                times.append(time.perf_counter() - t0)
            best[name] = min(best[name], float(np.percentile(times, 20)) * 1e3)
    return best


def size_of(path: Path) -> int:
    """The model's bytes on disk: an ONNX file with its external data, or OpenVINO's .xml + .bin."""
    extra = path.with_suffix(".bin") if path.suffix == ".xml" else path.with_name(path.name + ".data")
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)
