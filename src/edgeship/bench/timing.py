"""The one timing loop. Everything in edgeship that measures latency calls it: ``edgeship bench``'s
worker, the device health check, the mixed-precision search and the scripts in ``benchmarks/``.

- :func:`time_calls` times one callable: optional first call apart (cold), warm-up by time and by
  count and, when asked, until it is stable (two consecutive blocks' medians within 5%), then
  repetitions until the minimums are met and, with ``target_ci``, until the 95% confidence interval
  of the median is within ±``target_ci`` of it, or a time cap ends them (the result says which). The
  process CPU time (every thread's) over the timed repetitions gives CPU time per call.
- :func:`interleaved` times several callables in alternating rounds, so that load from other
  processes hits each alike; each one's figure is the best over rounds of a low per-round percentile
  (on a busy machine the uncontended runs are the ones that measure the model). Compare only ratios
  measured in one such call; :func:`ab_compare` gives such a ratio with its confidence interval.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgeship.bench.stats import Ratio, cv, median_ci, median_ci_rel, median_ratio, tukey_outliers

STABLE_TOLERANCE = 0.05  # warm-up is stable when two consecutive blocks' medians differ by at most this
WARMUP_BLOCK_S = 0.05  # a warm-up block lasts at least this long and at least WARMUP_BLOCK_CALLS calls
WARMUP_BLOCK_CALLS = 5

# Why the timed repetitions ended.
STOP_TARGET = "target"  # the median's confidence interval reached target_ci
STOP_MINIMUMS = "minimums"  # no interval asked for: min_reps and min_time_s were met
STOP_MAX_REPS = "max_reps"
STOP_TIME_CAP = "time_cap"


@dataclasses.dataclass(frozen=True)
class Timing:
    """Latencies of the timed repetitions, in milliseconds, and what came before them."""

    times_ms: tuple[float, ...]
    warmup_runs: int = 0
    first_ms: float | None = None  # the first call, timed apart (cold caches, lazy initialisation)
    cpu_ms: float | None = None  # mean process CPU time per timed call, every thread's (spinning included)
    stop: str = STOP_MINIMUMS
    target_ci: float | None = None  # the relative half-width of the median's 95% interval asked for
    warmup_stable: bool | None = None  # None: stability was not asked for
    warmup_s: float = 0.0  # how long warm-up took

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.times_ms, q))

    @property
    def median_ms(self) -> float:
        return self.percentile(50)

    @property
    def ci95_ms(self) -> tuple[float, float]:
        """The 95% confidence interval of the median (distribution-free)."""
        return median_ci(self.times_ms)

    @property
    def ci_rel(self) -> float:
        """Half the width of the median's 95% interval relative to the median (0.02: ±2%)."""
        return median_ci_rel(self.times_ms)

    @property
    def converged(self) -> bool:
        return self.target_ci is None or self.ci_rel <= self.target_ci

    def summary(self) -> dict[str, float]:
        arr = np.asarray(self.times_ms)
        return {"p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99),
                "mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}

    def stats(self) -> dict[str, Any]:
        """How far to trust the figures: the median's interval, spread, outliers, CPU time, why it stopped."""
        lo, hi = self.ci95_ms
        out = tukey_outliers(self.times_ms)
        n = len(self.times_ms)
        return {
            "ci95_ms": [lo, hi] if math.isfinite(lo) else None,
            "ci_rel": self.ci_rel if math.isfinite(self.ci_rel) else None,
            "target_ci": self.target_ci,
            "converged": self.converged,
            "stop": self.stop,
            "cv": cv(self.times_ms),
            "outliers": {"low": out.low, "high": out.high, "fraction": out.count / n if n else 0.0,
                         "fences_ms": [out.fence_low_ms, out.fence_high_ms]},
            "cpu_ms_per_call": self.cpu_ms,
            "warmup_stable": self.warmup_stable,
            "warmup_s": self.warmup_s,
        }

    def note(self) -> str | None:
        """A sentence when the interval asked for was not reached (None when it was, or none was asked)."""
        if self.converged:
            return None
        ci = "unknown" if not math.isfinite(self.ci_rel) else f"±{self.ci_rel:.1%}"
        why = {STOP_TIME_CAP: "the time cap ended the repetitions", STOP_MAX_REPS: "the repetition cap was reached"}
        return (f"the 95% interval of the median is {ci}, not the ±{self.target_ci * 100:g}% asked: "
                f"{why.get(self.stop, self.stop)} after {len(self.times_ms)} runs")


def time_calls(call: Callable[[], Any], *, min_reps: int = 10, min_time_s: float = 0.0, max_reps: int = 1_000_000,
               warmup_s: float = 0.0, min_warmup: int = 0, time_first: bool = False, target_ci: float | None = None,
               max_time_s: float | None = None, stable_warmup: bool = False, max_warmup_s: float | None = None,
               ) -> Timing:
    """Time ``call()``: the first call apart when ``time_first``; warm-up until ``warmup_s`` passed and
    ``min_warmup`` calls ran (and, with ``stable_warmup``, until two consecutive blocks' medians agree
    within 5%, for at most ``max_warmup_s``); then at least ``min_reps`` repetitions lasting at least
    ``min_time_s`` and, with ``target_ci``, until the median's 95% interval is within ±``target_ci``.
    ``max_reps`` and ``max_time_s`` cap the repetitions; :attr:`Timing.stop` says what ended them."""
    first_ms = None
    if time_first:
        t0 = time.perf_counter()
        call()
        first_ms = (time.perf_counter() - t0) * 1e3
    warm, stable = _warm_up(call, warmup_s, min_warmup, stable_warmup, max_warmup_s)
    times: list[float] = []
    stop = STOP_MINIMUMS
    next_check = min_reps
    # CPU time over the whole timed loop, not per call: nothing but the clock between two calls
    c_start = time.process_time()
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        n, elapsed = len(times), t1 - t_start
        if n >= max_reps:
            stop = STOP_MAX_REPS
            break
        if max_time_s is not None and elapsed >= max_time_s:
            stop = STOP_TIME_CAP
            break
        if n >= min_reps and elapsed >= min_time_s:
            if target_ci is None:
                break
            if n >= next_check:  # sorting every call would cost more than the calls on fast models
                if median_ci_rel(times) <= target_ci:
                    stop = STOP_TARGET
                    break
                next_check = max(n + 10, int(n * 1.1))
    cpu_s = time.process_time() - c_start
    return Timing(tuple(times), warm[0], first_ms, cpu_s * 1e3 / len(times), stop, target_ci, stable, warm[1])


def _warm_up(call: Callable[[], Any], warmup_s: float, min_warmup: int, stable_warmup: bool,
             max_warmup_s: float | None) -> tuple[tuple[int, float], bool | None]:
    """((calls, seconds), stable): warm-up by time and count, then (if asked) until stable."""
    t_begin = time.perf_counter()
    t_end = t_begin + warmup_s
    cap = t_begin + (max_warmup_s if max_warmup_s is not None else max(2.0, 5 * warmup_s))
    warm = 0
    block: list[float] = []
    block_start = t_begin
    medians: list[float] = []
    while True:
        t0 = time.perf_counter()
        if warm >= min_warmup and t0 >= t_end:
            if not stable_warmup:
                return (warm, t0 - t_begin), None
            if len(medians) >= 2 and abs(medians[-1] - medians[-2]) <= STABLE_TOLERANCE * medians[-2]:
                return (warm, t0 - t_begin), True
            if t0 >= cap:
                return (warm, t0 - t_begin), False
        call()
        t1 = time.perf_counter()
        warm += 1
        block.append(t1 - t0)
        if len(block) >= WARMUP_BLOCK_CALLS and t1 - block_start >= WARMUP_BLOCK_S:
            medians.append(float(np.median(block)))
            block, block_start = [], t1


def interleaved(calls: Mapping[str, Callable[[], Any]], *, rounds: int = 5, runs: int = 20, round_s: float = 0.0,
                warmup: int = 3, quantile: float = 20) -> dict[str, float]:
    """Latency (ms) of each callable: the best over ``rounds`` of the per-round ``quantile``-th
    percentile; each round runs every callable ``runs`` times and for at least ``round_s``."""
    per_round = interleaved_rounds(calls, rounds=rounds, runs=runs, round_s=round_s, warmup=warmup)
    return {name: min(t.percentile(quantile) for t in timings) for name, timings in per_round.items()}


def interleaved_rounds(calls: Mapping[str, Callable[[], Any]], *, rounds: int = 5, runs: int = 20,
                       round_s: float = 0.0, warmup: int = 3) -> dict[str, list[Timing]]:
    """Each callable's :class:`Timing` per round, the callables taking turns round by round."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    out: dict[str, list[Timing]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            out[name].append(time_calls(call, min_reps=runs, min_time_s=round_s))
    return out


def ab_compare(a: Callable[[], Any], b: Callable[[], Any], *, rounds: int = 10, runs: int = 20,
               round_s: float = 0.0, warmup: int = 3) -> Ratio:
    """``b``'s median latency over ``a``'s in one process, in interleaved rounds, with a bootstrap 95%
    interval (> 1: ``b`` is slower). An interval that excludes 1 is a difference, not noise."""
    per_round = interleaved_rounds({"a": a, "b": b}, rounds=rounds, runs=runs, round_s=round_s, warmup=warmup)
    flat = {k: [x for t in v for x in t.times_ms] for k, v in per_round.items()}
    return median_ratio(flat["a"], flat["b"])
