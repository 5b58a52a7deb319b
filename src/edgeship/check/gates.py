"""Accuracy gates as data: ``cosine_min>=0.98``, ``accuracy_drop<=0.5``, ``rel_err_max<=1e-5``.

Default gates depend on the candidate's precision (never one 1e-5 for everything; the table is
``tolerances.yaml`` beside this file): FP32 must match the reference to 1e-4 relative, FP16 to 1e-2,
and lossy precisions (INT8, INT4, mixed)
are judged by task metrics — the model's own gate when it has one (MiniLM: cosine mean/min), else
cosine and top-1 agreement.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from edgeship.check.metrics import HIGHER_IS_BETTER
from edgeship.core.errors import BadInput

_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}
_GATE_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")

TOLERANCES_FILE = Path(__file__).with_name("tolerances.yaml")


def _load_tolerances() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    import yaml

    table = yaml.safe_load(TOLERANCES_FILE.read_text())
    return ({k: tuple(v) for k, v in table["precision"].items()}, {k: tuple(v) for k, v in table["task"].items()})


# The one tolerance table (check/tolerances.yaml): gates by precision, and by task for lossy precisions.
PRECISION_GATES, TASK_GATES = _load_tolerances()


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


def default_gates(precision: str, task: str = "other", model_gates: tuple[str, ...] = ()) -> list[Gate]:
    """Gates for a candidate of ``precision``: numeric tolerance for float precisions, the model's
    (or the task's) gate for lossy ones."""
    if precision in PRECISION_GATES:
        return parse_gates(PRECISION_GATES[precision])
    return parse_gates(model_gates or TASK_GATES.get(task, TASK_GATES["other"]))


def evaluate_gates(gates: list[Gate], metrics: dict[str, Any]) -> tuple[bool, str]:
    """All gates must pass; ``why`` lists each verdict, failures first."""
    results = [g.evaluate(metrics) for g in gates]
    if metrics.get("nonfinite"):
        results.insert(0, (False, f"{metrics['nonfinite']} NaN/Inf values in the outputs"))
    passed = all(ok for ok, _ in results)
    why = "; ".join(w for ok, w in sorted(results, key=lambda r: r[0]))
    return passed, why or "no gates"
