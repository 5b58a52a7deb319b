"""A mergeable quantile sketch: what a device keeps of a distribution (latencies, input values,
output confidences) instead of the values themselves.

Values fall into logarithmic buckets whose width is a fixed fraction of their magnitude (the
relative accuracy ``alpha``; the buckets of DDSketch, Masson et al. 2019), one set for positive and
one for negative values, and one count for values near zero. Two sketches with the same ``alpha``
merge by adding their bucket counts, so the service can merge intervals, devices and cohorts in
any order and get the sketch of all their values; a quantile is then within ``alpha`` (relative)
of the true one. Count, sum and sum of squares ride along for the mean and standard deviation; the
smallest and largest value travel rounded to their buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

ZERO_BELOW = 1e-9  # magnitudes under this count as zero
MAX_BUCKETS = 2048  # per sign; a sketch from outside (a report) with more is refused


class Sketch:
    """Counts of values in logarithmic buckets of relative width ``alpha``."""

    __slots__ = ("_log_gamma", "alpha", "count", "high", "low", "neg", "pos", "total", "total_sq", "zero")

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha {alpha}: give a fraction in (0, 1)")
        self.alpha = float(alpha)
        self._log_gamma = math.log((1 + alpha) / (1 - alpha))
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zero = 0
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.low = math.inf
        self.high = -math.inf

    # -- adding ----------------------------------------------------------------------------------
    def add(self, values: float | Iterable[float] | np.ndarray) -> Sketch:
        """Add one value or many (non-finite values are left out; count them yourself)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        if not arr.size:
            return self
        self.count += int(arr.size)
        self.total += float(arr.sum())
        self.total_sq += float(np.square(arr).sum())
        self.low = min(self.low, float(arr.min()))
        self.high = max(self.high, float(arr.max()))
        small = np.abs(arr) < ZERO_BELOW
        self.zero += int(small.sum())
        for store, part in ((self.pos, arr[(arr > 0) & ~small]), (self.neg, -arr[(arr < 0) & ~small])):
            if part.size:
                keys, counts = np.unique(np.ceil(np.log(part) / self._log_gamma).astype(np.int64), return_counts=True)
                for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
                    store[k] = store.get(k, 0) + n
        return self

    def merge(self, other: Sketch) -> Sketch:
        """Add ``other``'s values to this sketch (same ``alpha`` only)."""
        if not math.isclose(other.alpha, self.alpha):
            raise ValueError(f"cannot merge sketches of accuracy {self.alpha} and {other.alpha}")
        for store, theirs in ((self.pos, other.pos), (self.neg, other.neg)):
            for k, n in theirs.items():
                store[k] = store.get(k, 0) + n
        self.zero += other.zero
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        return self

    # -- reading ---------------------------------------------------------------------------------
    def _value(self, key: int) -> float:
        """The value a bucket stands for (the one with the smallest relative error in it)."""
        gamma = math.exp(self._log_gamma)
        return 2 * gamma ** key / (gamma + 1)

    def _ordered(self) -> list[tuple[float, int]]:
        """(value, count) of every bucket, smallest value first."""
        out = [(-self._value(k), n) for k, n in sorted(self.neg.items(), reverse=True)]
        if self.zero:
            out.append((0.0, self.zero))
        out += [(self._value(k), n) for k, n in sorted(self.pos.items())]
        return out

    def quantile(self, q: float) -> float | None:
        """The value under which a fraction ``q`` of the values lie (None for an empty sketch)."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for value, n in self._ordered():
            seen += n
            if seen > rank:
                return min(max(value, self.low), self.high)
        return self.high

    def cdf(self, x: float) -> float:
        """The fraction of the values whose bucket stands for a value at most ``x``."""
        if not self.count:
            return 0.0
        below = sum(n for value, n in self._ordered() if value <= x)
        return below / self.count

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        return math.sqrt(max(0.0, self.total_sq / self.count - mean * mean))

    @property
    def buckets(self) -> int:
        return len(self.pos) + len(self.neg) + (1 if self.zero else 0)

    # -- the wire --------------------------------------------------------------------------------
    def _rounded(self, value: float) -> float:
        """``value`` as its bucket stands for it: the wire carries no exact value."""
        if abs(value) < ZERO_BELOW:
            return 0.0
        rep = self._value(math.ceil(math.log(abs(value)) / self._log_gamma))
        return rep if value > 0 else -rep

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alpha": self.alpha, "count": self.count, "sum": self.total, "sum_sq": self.total_sq}
        if self.count:
            out.update(min=self._rounded(self.low), max=self._rounded(self.high), zero=self.zero,
                       pos={str(k): n for k, n in self.pos.items()}, neg={str(k): n for k, n in self.neg.items()})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        """A sketch from its JSON object; a malformed one raises ValueError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("a sketch must be an object")
        s = cls(float(data.get("alpha", 0.01)))
        s.count = _count(data.get("count", 0), "count")
        s.total, s.total_sq = float(data.get("sum", 0.0)), float(data.get("sum_sq", 0.0))
        if s.count:
            s.low, s.high = float(data["min"]), float(data["max"])
            s.zero = _count(data.get("zero", 0), "zero")
            for name, store in (("pos", s.pos), ("neg", s.neg)):
                buckets = data.get(name) or {}
                if not isinstance(buckets, Mapping) or len(buckets) > MAX_BUCKETS:
                    raise ValueError(f"sketch {name}: at most {MAX_BUCKETS} buckets")
                for k, n in buckets.items():
                    store[int(k)] = _count(n, name)
            if s.zero + sum(s.pos.values()) + sum(s.neg.values()) != s.count:
                raise ValueError("sketch: bucket counts do not add up to its count")
        return s


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"sketch {what}: expected a count, got {value!r}")
    return value


def merged(sketches: Iterable[Sketch]) -> Sketch | None:
    """One sketch of all the values of ``sketches`` (None when there are none)."""
    out: Sketch | None = None
    for s in sketches:
        if out is None:
            out = Sketch(s.alpha)
        out.merge(s)
    return out
