"""The one timing loop. Everything in edgeship that measures latency calls it: ``edgeship bench``'s
worker, the device health check, the mixed-precision search and the scripts in ``benchmarks/``.

- :func:`time_calls` times one callable: optional first call apart (cold), warm-up by time and by
  count, then repetitions until both ``min_reps`` and ``min_time_s`` are met (capped by ``max_reps``).
- :func:`interleaved` times several callables in alternating rounds, so that load from other
  processes hits each alike; each one's figure is the best over rounds of a low per-round percentile
  (on a busy machine the uncontended runs are the ones that measure the model). Compare only ratios
  measured in one such call.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Timing:
    """Latencies of the timed repetitions, in milliseconds, and what came before them."""

    times_ms: tuple[float, ...]
    warmup_runs: int = 0
    first_ms: float | None = None  # the first call, timed apart (cold caches, lazy initialisation)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.times_ms, q))

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    def summary(self) -> dict[str, float]:
        arr = np.asarray(self.times_ms)
        return {"p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99),
                "mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}


def time_calls(call: Callable[[], Any], *, min_reps: int = 10, min_time_s: float = 0.0, max_reps: int = 1_000_000,
               warmup_s: float = 0.0, min_warmup: int = 0, time_first: bool = False) -> Timing:
    """Time ``call()``: the first call apart when ``time_first``, warm-up until ``warmup_s`` passed and
    ``min_warmup`` calls ran, then at least ``min_reps`` repetitions lasting at least ``min_time_s``."""
    first_ms = None
    if time_first:
        t0 = time.perf_counter()
        call()
        first_ms = (time.perf_counter() - t0) * 1e3
    warm = 0
    t_end = time.perf_counter() + warmup_s
    while warm < min_warmup or time.perf_counter() < t_end:
        call()
        warm += 1
    times: list[float] = []
    t_start = time.perf_counter()
    while (len(times) < min_reps or time.perf_counter() - t_start < min_time_s) and len(times) < max_reps:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return Timing(tuple(times), warm, first_ms)


def interleaved(calls: Mapping[str, Callable[[], Any]], *, rounds: int = 5, runs: int = 20, round_s: float = 0.0,
                warmup: int = 3, quantile: float = 20) -> dict[str, float]:
    """Latency (ms) of each callable: the best over ``rounds`` of the per-round ``quantile``-th
    percentile; each round runs every callable ``runs`` times and for at least ``round_s``."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            timing = time_calls(call, min_reps=runs, min_time_s=round_s)
            best[name] = min(best[name], timing.percentile(quantile))
    return best
