"""Statistics of latency samples: the confidence interval of the median, spread, outliers, and the
ratio of two medians with its confidence interval (what A/B timing and the regression gate decide on).

Latencies are skewed (a floor set by the model, a tail set by everything else on the machine), so
every figure here is distribution-free: order statistics and resampling, no normal assumption.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile
MIN_SAMPLES_FOR_CI = 6  # below this the order-statistic interval of the median is the whole range


def median_ci(times: Sequence[float] | np.ndarray, z: float = Z95) -> tuple[float, float]:
    """The distribution-free confidence interval of the median (order statistics; the binomial
    normal approximation): ``(x[j], x[k])`` with ``j, k = n/2 ∓ z·√n/2``. ``(-inf, inf)`` for n < 6."""
    arr = np.sort(np.asarray(times, dtype=float))
    n = arr.size
    if n < MIN_SAMPLES_FOR_CI:
        return -math.inf, math.inf
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)  # 1-based rank floor(n/2 - half) → 0-based index
    hi = min(n - 1, math.ceil(n / 2 + half))  # 1-based rank ceil(1 + n/2 + half) → 0-based index
    return float(arr[lo]), float(arr[hi])


def median_ci_rel(times: Sequence[float] | np.ndarray) -> float:
    """Half the width of the median's 95% interval, relative to the median (0.02 = ±2%)."""
    lo, hi = median_ci(times)
    med = float(np.median(times)) if len(times) else math.nan
    if not math.isfinite(lo) or med <= 0:
        return math.inf
    return (hi - lo) / 2 / med


@dataclasses.dataclass(frozen=True)
class Outliers:
    """Samples outside Tukey's fences (Q1 − 1.5·IQR, Q3 + 1.5·IQR): counted and reported, never dropped."""

    low: int
    high: int
    fence_low_ms: float
    fence_high_ms: float

    @property
    def count(self) -> int:
        return self.low + self.high


def tukey_outliers(times: Sequence[float] | np.ndarray) -> Outliers:
    arr = np.asarray(times, dtype=float)
    q1, q3 = np.percentile(arr, [25, 75])
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    return Outliers(int((arr < lo).sum()), int((arr > hi).sum()), float(lo), float(hi))


def cv(times: Sequence[float] | np.ndarray) -> float:
    """Coefficient of variation: standard deviation over mean."""
    arr = np.asarray(times, dtype=float)
    mean = float(arr.mean())
    return float(arr.std(ddof=1)) / mean if arr.size > 1 and mean > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Ratio:
    """``b``'s median over ``a``'s (> 1: ``b`` is slower) with a bootstrap 95% interval."""

    ratio: float
    lo: float
    hi: float
    resamples: int

    def to_dict(self) -> dict[str, float]:
        return {"ratio": self.ratio, "ci95": [self.lo, self.hi], "resamples": self.resamples}


def median_ratio(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, resamples: int = 2000,
                 seed: int = 0, level: float = 0.95) -> Ratio:
    """median(b) / median(a) and its percentile-bootstrap interval (each sample resampled on its own;
    seeded, so the same inputs give the same answer). Samples are thinned to 5000 each first: the
    interval of a median needs no more, and the bootstrap stays fast."""
    rng = np.random.default_rng(seed)
    xa, xb = _thin(np.asarray(a, dtype=float)), _thin(np.asarray(b, dtype=float))
    if xa.size == 0 or xb.size == 0:
        raise ValueError("median_ratio needs samples on both sides")
    ratio = float(np.median(xb) / np.median(xa))
    ma = np.median(rng.choice(xa, size=(resamples, xa.size), replace=True), axis=1)
    mb = np.median(rng.choice(xb, size=(resamples, xb.size), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(mb / ma, [tail, 100 - tail])
    return Ratio(ratio, float(lo), float(hi), resamples)


def _thin(arr: np.ndarray, keep: int = 5000) -> np.ndarray:
    """Every k-th sample in time order (keeps slow drifts represented), at most ``keep`` of them."""
    if arr.size <= keep:
        return arr
    return arr[:: math.ceil(arr.size / keep)]


def quantiles(times: Sequence[float] | np.ndarray, points: int = 101) -> list[float]:
    """``points`` evenly spaced percentiles (0, 1, ..., 100 by default): the distribution in little space."""
    return [float(v) for v in np.percentile(np.asarray(times, dtype=float), np.linspace(0, 100, points))]
