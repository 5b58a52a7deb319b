"""Drift: how far what a device sees has moved from a release's golden data.

For each statistic of each input and output (``inputs.x.value``, ``outputs.logits.confidence``, …)
the population stability index between the reference profile's sketch and the live one::

    PSI = Σ_bins (live_i − ref_i) · ln(live_i / ref_i)

over up to ``BINS`` bins whose edges are the reference's quantiles (so each bin holds an equal share
of the golden data). A golden file holds few samples, and a statistic with one value per sample
(a confidence, a norm) has as few values: the index of a sample of n values against its own
population is about (bins − 1)/n by chance alone, so the bins are as many as keep that under 0.04
(one per ``VALUES_PER_BIN`` reference values, at least 2), and a reference under
``MIN_REFERENCE_VALUES`` values gives no index. Customary reading: under 0.1 no shift, 0.1–0.25 a
moderate one, over 0.25 a significant one. Both sketches bucket values the same way, so the index is exact on that grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgeship.ship.sketch import Sketch

BINS = 10
VALUES_PER_BIN = 25
MIN_REFERENCE_VALUES = 20
EPSILON = 1e-4  # an empty bin counts as this fraction (the index is infinite otherwise)
# Fewer live values than this give no index (None): too few to say. At 100, the index of a live
# sample from the golden data's own population stays under 0.2 on the per-row statistics (one
# value per inference: confidence, entropy, norm) of a 64-sample golden file.
MIN_LIVE_VALUES = 100
SIGNIFICANT = 0.25


def psi(reference: Sketch, live: Sketch, bins: int = BINS) -> float | None:
    """The population stability index of ``live`` against ``reference`` (None when either is too small)."""
    if reference.count < MIN_REFERENCE_VALUES or live.count < MIN_LIVE_VALUES:
        return None
    bins = max(2, min(bins, reference.count // VALUES_PER_BIN))
    edges = sorted({q for q in (reference.quantile(i / bins) for i in range(1, bins)) if q is not None})
    ref_cdf = [0.0] + [reference.cdf(e) for e in edges] + [1.0]
    live_cdf = [0.0] + [live.cdf(e) for e in edges] + [1.0]
    total = 0.0
    for i in range(1, len(ref_cdf)):
        r = max(ref_cdf[i] - ref_cdf[i - 1], EPSILON)
        a = max(live_cdf[i] - live_cdf[i - 1], EPSILON)
        total += (a - r) * math.log(a / r)
    return round(total, 4)


def profile_sketches(profile: Mapping[str, Any]) -> dict[str, Sketch]:
    """``{"inputs.x.value": Sketch, "outputs.y.confidence": Sketch, …}`` of a profile or an aggregate dict."""
    out: dict[str, Sketch] = {}
    for side in ("inputs", "outputs"):
        for name, stats in (profile.get(side) or {}).items():
            for stat, sketch in stats.items():
                out[f"{side}.{name}.{stat}"] = sketch if isinstance(sketch, Sketch) else Sketch.from_dict(sketch)
    return out


def drift_scores(reference: Mapping[str, Sketch], live: Mapping[str, Sketch]) -> dict[str, float | None]:
    """PSI of every statistic the reference and the live data both have."""
    return {key: psi(ref, live[key]) for key, ref in reference.items() if key in live}


def worst(scores: Mapping[str, float | None]) -> tuple[str | None, float | None]:
    """The statistic with the highest index, and the index."""
    known = {k: v for k, v in scores.items() if v is not None}
    if not known:
        return None, None
    key = max(known, key=known.__getitem__)
    return key, known[key]
