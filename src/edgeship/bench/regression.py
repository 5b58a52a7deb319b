"""The regression gate: is a benchmark result slower than a stored one by more than allowed, beyond
what noise explains?

Both results carry their raw latencies (``times_ms``). The test is the percentile bootstrap of the
ratio of medians (current over baseline): a **regression** only when the whole 95% interval of the
ratio lies above ``1 + max_slowdown``, that is when the data say the slowdown exceeds the allowance,
not merely that the point estimate does (that is **inconclusive**: it says so, and passes). Results
from different systems (a different fingerprint: CPU, flags, cores, library versions, governor) or
timed with different settings (batch, sequence, shapes, threads, runtime) are not compared: the
first unless told to, the second never.

The interval covers the noise within each run; load that differs between the two runs moves every
sample of one run alike and is not in it, so each result's load average is shown beside the verdict,
and instructions per inference (which load does not move) are compared where both runs counted them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeship.bench.stats import median_ratio
from edgeship.bench.sysinfo import fingerprint_diff
from edgeship.core.errors import BadInput

SETTINGS = ("batch", "seq", "shapes", "threads", "runtime")

REGRESSION, INCONCLUSIVE, SAME, FASTER = "regression", "inconclusive", "within allowance", "faster"


def parse_slowdown(text: str | float) -> float:
    """``"5%"`` or ``0.05`` → 0.05."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = text.strip()
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise BadInput(f"--max-slowdown {text!r}: give a percentage such as 5% (or a fraction, 0.05)") from None
    if not 0 <= value < 1:
        raise BadInput(f"--max-slowdown {text!r}: give a percentage below 100%, such as 5% (or 0.05)")
    return value


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One model's result against its baseline."""

    model: str
    baseline_model: str
    verdict: str  # REGRESSION, INCONCLUSIVE, SAME or FASTER
    ratio: float  # current median over baseline median (> 1: slower)
    ci95: tuple[float, float]
    max_slowdown: float
    baseline_p50_ms: float
    current_p50_ms: float
    why: str
    system_differs: tuple[str, ...] = ()
    instructions_ratio: float | None = None
    load: tuple[list[float] | None, list[float] | None] = (None, None)  # baseline's, current's load averages

    @property
    def regressed(self) -> bool:
        return self.verdict == REGRESSION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ci95"] = list(self.ci95)
        d["system_differs"] = list(self.system_differs)
        d["load"] = {"baseline": self.load[0], "current": self.load[1]}
        return d


def compare(baseline: dict[str, Any], current: dict[str, Any], max_slowdown: float = 0.05, *,
            allow_different_system: bool = False) -> Comparison:
    """Compare two ``edgeship bench --json`` records; raises BadInput when they may not be compared."""
    for name, rec in (("baseline", baseline), ("current", current)):
        if not rec.get("times_ms"):
            raise BadInput(f"the {name} result of {rec.get('model')!r} has no raw latencies (times_ms): it was made "
                           "by an older edgeship; rerun `edgeship bench --json` to make a baseline")
    differ = [f"{k} {baseline.get(k)!r} → {current.get(k)!r}" for k in SETTINGS if baseline.get(k) != current.get(k)]
    if differ:
        raise BadInput(f"{current.get('model')} was timed with other settings than its baseline ({'; '.join(differ)}); "
                       "time it with the baseline's settings")
    sys_a, sys_b = baseline.get("system", {}), current.get("system", {})
    system = fingerprint_diff(sys_a, sys_b) if sys_a.get("fingerprint") != sys_b.get("fingerprint") else []
    if system and not allow_different_system:
        raise BadInput(f"the baseline was timed on another system ({'; '.join(system[:6])}); compare on the same "
                       "system, or pass --allow-different-system to compare anyway")
    r = median_ratio(baseline["times_ms"], current["times_ms"])
    limit = 1 + max_slowdown
    if r.lo > limit:
        verdict, why = REGRESSION, (f"{r.ratio:.3f}× the baseline's median (95% interval {r.lo:.3f}–{r.hi:.3f}), "
                                    f"all of it above the {max_slowdown:.0%} allowed")
    elif r.ratio > limit:
        verdict, why = INCONCLUSIVE, (f"{r.ratio:.3f}× the baseline's median, but the 95% interval "
                                      f"{r.lo:.3f}–{r.hi:.3f} reaches below {limit:.2f}: not shown to exceed the "
                                      f"{max_slowdown:.0%} allowed; rerun both on a quiet machine to decide")
    elif r.hi < 1 - max_slowdown:  # as sure, and by as much, as a regression would have to be
        verdict, why = FASTER, f"{r.ratio:.3f}× the baseline's median (95% interval {r.lo:.3f}–{r.hi:.3f}): faster"
    else:
        verdict, why = SAME, (f"{r.ratio:.3f}× the baseline's median (95% interval {r.lo:.3f}–{r.hi:.3f}), within the "
                              f"{max_slowdown:.0%} allowed")
    ia = (baseline.get("instructions") or {}).get("per_inference")
    ib = (current.get("instructions") or {}).get("per_inference")
    return Comparison(str(current.get("model")), str(baseline.get("model")), verdict, r.ratio, (r.lo, r.hi),
                      max_slowdown, float(baseline["latency_ms"]["p50"]), float(current["latency_ms"]["p50"]), why,
                      tuple(system), ib / ia if ia and ib else None,
                      (sys_a.get("load_avg"), sys_b.get("load_avg")))


def compare_all(baselines: list[dict[str, Any]] | dict[str, Any], currents: list[dict[str, Any]],
                max_slowdown: float = 0.05, *, allow_different_system: bool = False) -> list[Comparison]:
    """Each current result against the baseline at the same position (a baseline file holds one
    result, or a list of them in the order the models were given)."""
    base = baselines if isinstance(baselines, list) else [baselines]
    if len(base) != len(currents):
        raise BadInput(f"the baseline holds {len(base)} result(s) and {len(currents)} model(s) were timed; "
                       "give as many models, in the baseline's order")
    return [compare(b, c, max_slowdown, allow_different_system=allow_different_system)
            for b, c in zip(base, currents, strict=True)]


def load_baseline(path: str) -> list[dict[str, Any]] | dict[str, Any]:
    """A baseline file: what ``edgeship bench --json`` (or ``--out``) wrote: one result or a list."""
    import json
    from pathlib import Path

    hint = f"write one with `edgeship bench MODEL --out {path}`"
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInput(f"--baseline {path!r}: {exc.strerror or exc}; {hint}") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"--baseline {path!r} is not JSON ({exc.msg} at line {exc.lineno}); {hint}") from None
    if isinstance(data, dict | list):
        return data
    raise BadInput(f"--baseline {path!r} holds no benchmark result; {hint}")
