"""The mergeable quantile sketch and the drift index built on it: quantiles within the sketch's
relative accuracy, merging equal to sketching the union, a malformed sketch refused, and PSI near
zero for the same distribution and over the 0.25 line for a shifted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeship.ship.drift import SIGNIFICANT, drift_scores, psi, worst
from edgeship.ship.sketch import Sketch


def test_quantiles_are_within_the_relative_accuracy():
    rng = np.random.default_rng(0)
    values = rng.lognormal(1.0, 0.8, 20_000)
    s = Sketch(0.01).add(values)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99):
        exact = float(np.quantile(values, q))
        assert abs(s.quantile(q) - exact) / exact < 0.02, q
    assert s.count == 20_000 and s.mean == pytest.approx(values.mean()) and s.std == pytest.approx(values.std())


def test_signed_values_and_zeros():
    values = np.array([-5.0, -1.0, 0.0, 0.0, 1.0, 5.0, 10.0])
    s = Sketch(0.01).add(values)
    assert s.quantile(0.0) == pytest.approx(-5.0, rel=0.02) and s.quantile(1.0) == pytest.approx(10.0, rel=0.02)
    assert s.quantile(0.5) == 0.0
    assert s.cdf(-0.5) == pytest.approx(2 / 7) and s.cdf(0.0) == pytest.approx(4 / 7)


def test_merge_equals_the_sketch_of_the_union():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3000), rng.standard_normal(5000) * 3 + 1
    merged = Sketch(0.05).add(a).merge(Sketch(0.05).add(b))
    union = Sketch(0.05).add(np.concatenate([a, b]))
    m, u = merged.to_dict(), union.to_dict()
    assert {k: m[k] for k in ("pos", "neg", "zero", "count", "min", "max")} == \
        {k: u[k] for k in ("pos", "neg", "zero", "count", "min", "max")}
    assert m["sum"] == pytest.approx(u["sum"]) and m["sum_sq"] == pytest.approx(u["sum_sq"])
    with pytest.raises(ValueError, match="cannot merge"):
        Sketch(0.01).merge(Sketch(0.05))


def test_round_trip_and_malformed_sketches():
    s = Sketch(0.05).add(np.linspace(-3, 3, 101))
    back = Sketch.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.to_dict() == s.to_dict() and back.quantile(0.3) == s.quantile(0.3)
    bad = s.to_dict()
    bad["count"] += 1
    with pytest.raises(ValueError, match="add up"):
        Sketch.from_dict(bad)
    with pytest.raises(ValueError, match="buckets"):
        Sketch.from_dict({**s.to_dict(), "pos": {str(i): 1 for i in range(5000)}})
    with pytest.raises(ValueError, match="count"):
        Sketch.from_dict({**s.to_dict(), "count": -1})


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(2)
    ref = Sketch(0.05).add(rng.standard_normal(2000))
    same = Sketch(0.05).add(rng.standard_normal(5000))
    shifted = Sketch(0.05).add(rng.standard_normal(5000) + 1.0)
    assert psi(ref, same) < 0.05
    assert psi(ref, shifted) > SIGNIFICANT
    assert psi(ref, Sketch(0.05).add([0.1] * 5)) is None  # too few live values to say
    scores = drift_scores({"inputs.x.value": ref, "outputs.y.norm": ref}, {"inputs.x.value": shifted,
                                                                           "outputs.y.norm": same})
    assert worst(scores)[0] == "inputs.x.value"
