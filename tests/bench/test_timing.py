"""The one timing loop, on calls whose duration is known (sleeps), so the assertions hold on a busy machine:
a sleep never returns early, and the scheduler can only make it longer."""

from __future__ import annotations

import time

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
