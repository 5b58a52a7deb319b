"""Statistics of latency samples, checked against distributions whose medians are known."""

import math

import numpy as np
import pytest

from edgeship.bench.stats import median_ci, median_ci_rel, median_ratio, quantiles, tukey_outliers


def test_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = math.log(2)  # of the standard exponential: skewed like latencies
    hits = 0
    trials = 600
    for _ in range(trials):
        lo, hi = median_ci(rng.exponential(size=120))
        hits += lo <= true_median <= hi
    assert 0.92 <= hits / trials <= 0.985


def test_median_interval_narrows_with_more_samples_and_is_open_for_few():
    rng = np.random.default_rng(1)
    assert median_ci([1.0, 2.0]) == (-math.inf, math.inf) and median_ci_rel([1.0, 2.0]) == math.inf
    wide = median_ci_rel(rng.normal(10, 1, 100))
    narrow = median_ci_rel(rng.normal(10, 1, 10_000))
    assert narrow < wide / 5


def test_median_ratio_interval():
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 0.05, 2000)
    b = rng.normal(1.1, 0.05, 2000)
    r = median_ratio(a, b)
    assert r.lo < 1.1 < r.hi and r.lo > 1.05 and r.ratio == pytest.approx(1.1, rel=0.01)
    # two samples of one distribution: the interval holds 1 about 95% of the time
    hits = 0
    for seed in range(80):
        same = median_ratio(rng.normal(1.0, 0.05, 200), rng.normal(1.0, 0.05, 200), resamples=400, seed=seed)
        hits += same.lo <= 1.0 <= same.hi
    assert hits / 80 >= 0.88
    assert median_ratio(a, b) == r  # seeded: the same inputs give the same answer


def test_outliers_and_quantiles():
    out = tukey_outliers([1.0] * 20 + [1.1] * 20 + [9.0])
    assert out.high == 1 and out.low == 0 and out.fence_high_ms < 9.0
    q = quantiles(np.arange(101.0))
    assert len(q) == 101 and q[0] == 0 and q[50] == 50 and q[100] == 100
