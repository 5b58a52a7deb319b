"""Accuracy gates as data: ``cosine_min>=0.98``, ``accuracy_drop<=0.5``, ``rel_err_max<=1e-5``.

Default gates depend on the candidate's precision (never one 1e-5 for everything; the table is
``tolerances.yaml`` beside this file): FP32 must match the reference to 1e-4 relative, FP16 to 1e-2,
and lossy precisions (INT8, INT4, mixed)
are judged by task metrics — the model's own gate when it has one (MiniLM: cosine mean/min), else
the task's: cosine for embeddings, and for classifiers top-1 agreement where the reference is
confident plus top-5 containment everywhere (and the accuracy drop when the data has labels).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from edgeship.check.metrics import HIGHER_IS_BETTER, TOLERANCES_FILE, tolerance_table  # noqa: F401 (re-exported)
from edgeship.core.errors import BadInput

_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}
_GATE_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")



def _load_tolerances() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    table = tolerance_table()
    return ({k: tuple(v) for k, v in table["precision"].items()}, {k: tuple(v) for k, v in table["task"].items()},
            {k: tuple(v) for k, v in table.get("when_labelled", {}).items()})


# The one tolerance table (check/tolerances.yaml): gates by precision, and by task for lossy
# precisions (with more when the data has labels).
PRECISION_GATES, TASK_GATES, LABELLED_GATES = _load_tolerances()


@dataclasses.dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        m = _GATE_RE.match(text)
        if not m:
            raise BadInput(f"gate {text!r}: expected METRIC OP VALUE such as cosine_min>=0.98 or accuracy_drop<=0.5")
        metric, op, value = m.groups()
        if metric not in HIGHER_IS_BETTER:
            raise BadInput(f"gate {text!r}: unknown metric {metric!r}; known: {', '.join(sorted(HIGHER_IS_BETTER))}")
        try:
            return cls(metric, op, float(value))
        except ValueError:
            raise BadInput(f"gate {text!r}: {value!r} is not a number") from None

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def evaluate(self, metrics: dict[str, Any]) -> tuple[bool, str]:
        value = metrics.get(self.metric)
        if value is None:
            need = " (needs labels in the data)" if "accuracy" in self.metric else ""
            return False, f"{self.metric} not measured{need}"
        ok = bool(_OPS[self.op](value, self.value)) and not (isinstance(value, float) and math.isnan(value))
        return ok, f"{self.metric}={_fmt(value)} {'meets' if ok else 'fails'} {self.op}{self.value:g}"

    def tightest(self, metrics: dict[str, Any]) -> str | None:
        """The tightest threshold of this metric that the measured value would have passed."""
        value = metrics.get(self.metric)
        if value is None:
            return None
        op = "<=" if not HIGHER_IS_BETTER[self.metric] else ">="
        return f"{self.metric}{op}{_fmt(value)}"


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.6g}"
    return f"{v:.3g}"


def parse_gates(texts: list[str] | tuple[str, ...] | None) -> list[Gate]:
    gates: list[Gate] = []
    for t in texts or ():
        for part in str(t).split(","):
            if part.strip():
                gates.append(Gate.parse(part))
    return gates


def default_gates(precision: str, task: str = "other", model_gates: tuple[str, ...] = (),
                  labelled: bool = False) -> list[Gate]:
    """Gates for a candidate of ``precision``: numeric tolerance for float precisions, the model's
    (or the task's, with its ``when_labelled`` gates when the data has labels) for lossy ones."""
    if precision in PRECISION_GATES:
        return parse_gates(PRECISION_GATES[precision])
    if model_gates:
        return parse_gates(model_gates)
    return parse_gates(TASK_GATES.get(task, TASK_GATES["other"]) + (LABELLED_GATES.get(task, ()) if labelled else ()))


def evaluate_gates(gates: list[Gate], metrics: dict[str, Any]) -> tuple[bool, str]:
    """All gates must pass; ``why`` lists each verdict, failures first."""
    results = [g.evaluate(metrics) for g in gates]
    if metrics.get("nonfinite"):
        results.insert(0, (False, f"{metrics['nonfinite']} NaN/Inf values in the outputs"))
    passed = all(ok for ok, _ in results)
    why = "; ".join(w for ok, w in sorted(results, key=lambda r: r[0]))
    return passed, why or "no gates"


def tightened(gates: list[Gate] | list[str] | tuple[str, ...], margin: float) -> list[Gate]:
    """The gates with ``margin`` of their allowed error held in reserve, for a search to select with.

    Bounded higher-is-better metrics (cosine, agreement ≤ 1; accuracy ≤ 100) move toward their
    ideal: cosine_min>=0.98 with margin 0.25 becomes >=0.985. Lower-is-better ones shrink toward 0:
    accuracy_drop<=0.5 becomes <=0.375. Unbounded ones (snr_db) grow by the margin.
    """
    out = []
    for g in (g if isinstance(g, Gate) else Gate.parse(g) for g in gates):
        if HIGHER_IS_BETTER.get(g.metric, True):
            ideal = 100.0 if g.metric in ("accuracy", "ref_accuracy") else (1.0 if g.value <= 1.0 else None)
            value = g.value + margin * (ideal - g.value) if ideal is not None else g.value + margin * abs(g.value)
        else:
            value = g.value * (1.0 - margin)
        out.append(Gate(g.metric, g.op, value))
    return out


def slack(gates: list[Gate], metrics: dict[str, Any]) -> float:
    """The worst normalised distance of ``metrics`` to a gate (positive: every gate passes with room;
    -inf when a gated metric was not measured)."""
    worst = float("inf")
    for g in gates:
        v = metrics.get(g.metric)
        if v is None:
            return -float("inf")
        scale = max(abs(1.0 - g.value), 1e-6) if g.value <= 1 else max(abs(g.value), 1e-6)
        d = (v - g.value) if HIGHER_IS_BETTER.get(g.metric, True) else (g.value - v)
        worst = min(worst, d / scale)
    return worst
