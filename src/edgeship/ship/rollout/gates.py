"""Telemetry gates of a rollout stage: verdicts on what the new release does on the stage's devices
(their telemetry totals on the new release and on the one before), each naming the devices at fault.

A gate is registered by the name a halted rollout reports (``latency_regression``, ``error_rate``,
``drift``, ``confidence_drop``) with the :class:`TelemetryGates` field that sets its limit; a
verdict of ``None`` means the stage's devices have not sent enough telemetry to judge yet.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping
from typing import Any

from edgeship.ship.drift import drift_scores, profile_sketches, worst
from edgeship.ship.rollout.config import TelemetryGates
from edgeship.ship.sketch import Sketch, merged
from edgeship.ship.telemetry import Aggregate

MAX_NAMED_DEVICES = 20  # a verdict names at most this many devices


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the gates read: per device, its totals on the new release and on the previous one."""

    new: Mapping[str, Aggregate]
    old: Mapping[str, Aggregate]
    reference: Mapping[str, Any] | None  # the new release's reference profile
    min_devices: int  # devices with enough telemetry before a gate judges
    min_inferences: int


@dataclasses.dataclass(frozen=True)
class Verdict:
    gate: str
    passed: bool | None  # None: not enough telemetry yet
    value: float | None
    limit: float
    devices: tuple[str, ...] = ()  # the devices over the limit (worst first)
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "value": self.value, "limit": self.limit,
                "devices": list(self.devices), "why": self.why}


GateFunction = Callable[[Evidence, float], Verdict]
GATES: dict[str, tuple[str, GateFunction]] = {}


def gate(name: str, field: str) -> Callable[[GateFunction], GateFunction]:
    def register(fn: GateFunction) -> GateFunction:
        GATES[name] = (field, fn)
        return fn
    return register


def _enough(aggs: Mapping[str, Aggregate], n: int) -> dict[str, Aggregate]:
    return {d: a for d, a in aggs.items() if a.count >= n}


def _named(scores: Mapping[str, float], limit: float) -> tuple[str, ...]:
    over = sorted((d for d, v in scores.items() if v > limit), key=lambda d: -scores[d])
    return tuple(over[:MAX_NAMED_DEVICES])


def _waiting(name: str, limit: float, have: int, need: int, what: str = "devices with telemetry") -> Verdict:
    return Verdict(name, None, None, limit, why=f"{have} of {need} {what}")


@gate("latency_regression", "max_latency_regression")
def latency_regression(ev: Evidence, limit: float) -> Verdict:
    """Per device, p50 on the new release over p50 on the previous one; the median device decides."""
    new, old = _enough(ev.new, ev.min_inferences), _enough(ev.old, ev.min_inferences)
    ratios: dict[str, float] = {}
    for d, a in new.items():
        if d in old and a.latency.count and old[d].latency.count:
            before = old[d].latency.quantile(0.5) or 0.0
            if before > 0:
                ratios[d] = (a.latency.quantile(0.5) or 0.0) / before - 1
    if len(ratios) < ev.min_devices:
        return _waiting("latency_regression", limit, len(ratios), ev.min_devices,
                        "devices with telemetry on both releases")
    value = round(statistics.median(ratios.values()), 4)
    passed = value <= limit
    why = (f"p50 latency {value:+.1%} against the previous release on the same {len(ratios)} devices "
           f"(limit {limit:+.0%})")
    return Verdict("latency_regression", passed, value, limit, _named(ratios, limit), why)


@gate("error_rate", "max_error_rate")
def error_rate(ev: Evidence, limit: float) -> Verdict:
    new = _enough(ev.new, ev.min_inferences)
    if len(new) < ev.min_devices:
        return _waiting("error_rate", limit, len(new), ev.min_devices)
    total = sum(a.count for a in new.values())
    errors = sum(a.error_count for a in new.values())
    value = round(errors / total, 4) if total else 0.0
    rates = {d: a.error_count / a.count for d, a in new.items() if a.count}
    return Verdict("error_rate", value <= limit, value, limit, _named(rates, limit),
                   f"{errors} of {total} inferences failed on {len(new)} devices (limit {limit:.1%})")


@gate("drift", "max_drift")
def drift(ev: Evidence, limit: float) -> Verdict:
    """The worst population stability index of the stage's merged telemetry against the golden data."""
    if not ev.reference:
        return Verdict("drift", None, None, limit, why="the release has no reference profile")
    new = _enough(ev.new, ev.min_inferences)
    if len(new) < ev.min_devices:
        return _waiting("drift", limit, len(new), ev.min_devices)
    ref = profile_sketches(ev.reference)
    stage = merged_sketches(new.values())
    key, value = worst(drift_scores(ref, stage))
    if value is None:
        return Verdict("drift", None, None, limit, why="no statistic with enough values")
    per_device = {d: worst(drift_scores(ref, a.sketches()))[1] or 0.0
                  for d, a in new.items()}
    return Verdict("drift", value <= limit, value, limit, _named(per_device, limit),
                   f"PSI {value:.3f} on {key} over {len(new)} devices (limit {limit:g})")


def _mean_confidence(aggs: Any) -> float | None:
    sketches = [s for a in aggs for stats in a.outputs.values() for name, s in stats.items() if name == "confidence"]
    m = merged(sketches)
    return None if m is None else m.mean


@gate("confidence_drop", "max_confidence_drop")
def confidence_drop(ev: Evidence, limit: float) -> Verdict:
    """The fall of the mean top-1 confidence against the previous release on the same devices (the
    golden data's when they have no telemetry on it)."""
    new = _enough(ev.new, ev.min_inferences)
    if len(new) < ev.min_devices:
        return _waiting("confidence_drop", limit, len(new), ev.min_devices)
    now = _mean_confidence(new.values())
    if now is None:
        return Verdict("confidence_drop", None, None, limit, why="the release has no classifier output")
    old = {d: a for d, a in _enough(ev.old, ev.min_inferences).items() if d in new}
    base, against = _mean_confidence(old.values()), "the previous release on the same devices"
    if base is None and ev.reference:
        ref = [Sketch.from_dict(v) for stats in (ev.reference.get("outputs") or {}).values()
               for k, v in stats.items() if k == "confidence"]
        base, against = (merged(ref).mean if ref else None), "the golden data"  # type: ignore[union-attr]
    if not base:
        return Verdict("confidence_drop", None, None, limit, why="nothing to compare the confidence with")
    value = round(1 - now / base, 4)
    per_device = {d: 1 - (_mean_confidence([a]) or base) / base for d, a in new.items()}
    return Verdict("confidence_drop", value <= limit, value, limit, _named(per_device, limit),
                   f"mean confidence {now:.3f} against {base:.3f} on {against} ({value:+.1%}; limit {limit:.0%})")


def merged_sketches(aggs: Any) -> dict[str, Sketch]:
    """``{"inputs.x.value": Sketch, …}`` merged over aggregates."""
    out: dict[str, Sketch] = {}
    for a in aggs:
        for key, s in a.sketches().items():
            if key in out:
                out[key].merge(s)
            else:
                out[key] = Sketch(s.alpha).merge(s)
    return out


def evaluate(gates: TelemetryGates, ev: Evidence) -> list[Verdict]:
    """The verdict of every gate that is on, in registration order."""
    out = []
    for _name, (field, fn) in GATES.items():
        limit = getattr(gates, field)
        if limit is not None:
            out.append(fn(ev, float(limit)))
    return out
