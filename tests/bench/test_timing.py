"""The one timing loop, on calls whose duration is known (sleeps), so the assertions hold on a busy machine:
a sleep never returns early, and the scheduler can only make it longer."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgeship.bench.timing import Timing, interleaved, time_calls


def test_time_calls_measures_what_the_call_takes():
    t = time_calls(lambda: time.sleep(0.004), min_reps=8)
    assert len(t.times_ms) == 8 and t.first_ms is None and t.warmup_runs == 0
    assert min(t.times_ms) >= 4.0
    s = t.summary()
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert s["p50"] == pytest.approx(t.median_ms)


def test_time_calls_honours_minimum_time_warmup_and_cap():
    calls = []
    t = time_calls(lambda: calls.append(1), min_reps=3, min_time_s=0.05, warmup_s=0.02, min_warmup=5,
                   time_first=True, max_reps=10**7)
    assert t.first_ms is not None and t.warmup_runs >= 5
    assert len(calls) == 1 + t.warmup_runs + len(t.times_ms)
    assert len(t.times_ms) > 3  # 50 ms of near-empty calls is far more than three
    capped = time_calls(lambda: None, min_reps=5, min_time_s=10.0, max_reps=50)
    assert len(capped.times_ms) == 50  # the cap wins over the minimum time


def test_interleaved_ranks_calls_by_their_duration():
    ms = interleaved({"short": lambda: time.sleep(0.002), "long": lambda: time.sleep(0.008)}, rounds=2, runs=5,
                     warmup=1)
    assert set(ms) == {"short", "long"}
    assert ms["short"] >= 2.0 and ms["long"] >= 8.0 and ms["long"] > ms["short"]


def test_percentile_of_known_values():
    t = Timing((1.0, 2.0, 3.0, 4.0, 5.0))
    assert t.median_ms == 3.0 and t.percentile(0) == 1.0 and t.percentile(100) == 5.0


def test_repetitions_stop_when_the_median_is_known_to_two_percent():
    t = time_calls(lambda: time.sleep(0.002), min_reps=10, target_ci=0.02, max_time_s=20)
    assert t.stop == "target" and t.converged and t.ci_rel <= 0.02
    lo, hi = t.ci95_ms
    assert lo <= t.median_ms <= hi and (hi - lo) / 2 <= 0.02 * t.median_ms
    assert t.note() is None
    st = t.stats()
    assert st["converged"] is True and st["stop"] == "target" and st["cv"] >= 0


def test_a_time_cap_ends_noisy_repetitions_and_says_so():
    rng = iter(np.random.default_rng(0).uniform(0.0005, 0.006, 100_000))
    t = time_calls(lambda: time.sleep(next(rng)), min_reps=5, target_ci=0.001, max_time_s=0.3)
    assert t.stop == "time_cap" and not t.converged
    assert "not the ±0.1% asked" in t.note() and "time cap" in t.note()
    assert sum(t.times_ms) / 1e3 <= 0.3 + 0.05  # the cap is a wall-time cap on the timed runs


def test_warmup_runs_until_the_call_is_stable():
    calls = []

    def settling():  # 8 ms at first, settling geometrically towards 1 ms (caches, lazy set-up, clocks)
        calls.append(1)
        time.sleep(0.001 + 0.008 * 0.8 ** len(calls))

    t = time_calls(settling, min_reps=5, stable_warmup=True, max_warmup_s=10)
    assert t.warmup_stable is True and t.warmup_runs > 10
    assert min(t.times_ms) < 1.6  # the settling is in the warm-up, not in the timed runs
    unstable = time_calls(lambda: time.sleep(0.001), min_reps=5, stable_warmup=True, max_warmup_s=0.0,
                          warmup_s=0.0)
    assert unstable.warmup_stable is False  # no time to see two blocks: said, not assumed


def test_cpu_time_per_call_tells_waiting_from_computing():
    def compute():  # a fixed amount of work: its CPU time does not depend on the machine's load
        sum(i * i for i in range(100_000))

    busy = time_calls(compute, min_reps=10)
    idle = time_calls(lambda: time.sleep(0.003), min_reps=10)
    assert busy.cpu_ms > 10 * idle.cpu_ms
    assert busy.cpu_ms <= max(busy.times_ms) * 1.05  # one thread cannot use more CPU than wall time
    assert idle.cpu_ms < 0.3 * idle.median_ms


def test_outliers_are_counted_not_dropped():
    t = Timing((1.0,) * 50 + (10.0, 12.0))
    st = t.stats()
    assert st["outliers"]["high"] == 2 and st["outliers"]["low"] == 0
    assert t.summary()["max"] == 12.0  # still in the figures


def test_ab_compare_finds_a_real_difference_and_not_a_false_one():
    from edgeship.bench.timing import ab_compare

    slower = ab_compare(lambda: time.sleep(0.002), lambda: time.sleep(0.003), rounds=4, runs=10)
    assert slower.lo > 1.2 and slower.ratio == pytest.approx(1.5, rel=0.25)
    same = ab_compare(lambda: time.sleep(0.002), lambda: time.sleep(0.002), rounds=4, runs=10)
    assert same.lo <= 1.0 <= same.hi or abs(same.ratio - 1) < 0.1
