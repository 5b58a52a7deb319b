"""The one comparison engine: candidate outputs against reference outputs, under gates.

Everything in edgeship that asks "does this model still compute what the reference does?" comes
here: ``edgeship check`` (after running the subjects), export parity, compression's evaluation, QAT,
the mixed-precision search and the device health check. Outputs are lists of feeds (one dict of
arrays per sample); the verdict is a :class:`CandidateResult` with per-output metrics, the worst case
over outputs, each gate's verdict, and the tightest tolerance that would have passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeship.check.gates import Gate, default_gates, evaluate_gates, parse_gates
from edgeship.check.metrics import HIGHER_IS_BETTER, is_classifier, output_metrics, worst_case

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass
class CandidateResult:
    name: str
    precision: str
    status: str  # "pass", "fail", "not_run", "error"
    outputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    gates: list[str] = dataclasses.field(default_factory=list)
    why: str = ""
    tightest: list[str] = dataclasses.field(default_factory=list)
    load_time_s: float | None = None
    first_divergence: dict[str, Any] | None = None  # where the error first appears (ONNX vs ONNX)
    worst_output: str | None = None  # the output that fails first, when one does
    per_output: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # {name: {passed, why}}

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_gates(gates: Sequence[str | Gate] | None, precision: str = "fp32", task: str = "other",
                  model_gates: Sequence[str] = ()) -> list[Gate]:
    """``None``: the defaults of ``precision`` (and the task or the model's gate for lossy ones);
    a list (possibly empty): exactly those gates."""
    if gates is None:
        return default_gates(precision, task, tuple(model_gates))
    out: list[Gate] = []
    for g in gates:
        out.extend([g] if isinstance(g, Gate) else parse_gates([g]))
    return out


def match_outputs(ref: Feeds, cand: Feeds, where: str, by_position: bool = False) -> dict[str, str]:
    """Reference output name → candidate output name: by name, else by position (converters rename).
    Raises ValueError when they cannot correspond."""
    if not by_position and set(ref) <= set(cand):
        return {n: n for n in ref}
    if len(ref) == len(cand):
        return dict(zip(ref, cand, strict=True))
    raise ValueError(f"{where}: outputs {', '.join(cand)} do not match the reference's {', '.join(ref)}")


def judge(reference: Sequence[Feeds], candidate: Sequence[Feeds], gates: Sequence[str | Gate] | None = None, *,
          precision: str = "fp32", task: str = "other", model_gates: Sequence[str] = (),
          labels: np.ndarray | None = None, name: str = "candidate", by_position: bool = False,
          outputs: Sequence[str] | None = None) -> CandidateResult:
    """Judge ``candidate`` against ``reference`` (same samples, same order).

    ``gates=None`` uses the defaults by precision and task; ``[]`` checks only that the outputs are
    finite. ``outputs`` limits the comparison to those reference outputs. Outputs that cannot be
    compared (missing, other shapes) give status ``error`` with the reason; NaN/Inf always fail.
    """
    gate_list = resolve_gates(gates, precision, task, model_gates)
    res = CandidateResult(name, precision, "error", gates=[str(g) for g in gate_list])
    if len(reference) != len(candidate):
        res.why = f"{len(candidate)} candidate samples for {len(reference)} reference samples"
        return res
    if not reference:
        res.why = "no samples to compare"
        return res
    try:
        mapping = match_outputs(reference[0], candidate[0], name, by_position)
    except ValueError as exc:
        res.why = str(exc)
        return res
    if outputs is not None:
        mapping = {r: c for r, c in mapping.items() if r in outputs}
    for rname, cname in mapping.items():
        refs = [o[rname] for o in reference]
        classifier = is_classifier(task, refs)
        # labels belong to a model's one prediction: with several outputs, to none in particular
        use_labels = labels if labels is not None and len(mapping) == 1 else None
        try:
            res.outputs[rname] = output_metrics(refs, [o[cname] for o in candidate], use_labels, classifier)
        except ValueError as exc:
            res.why = f"output {rname!r}: {exc}"
            return res
    for oname, metrics in res.outputs.items():
        ok, owhy = evaluate_gates(gate_list, metrics)
        res.per_output[oname] = {"passed": ok, "why": owhy}
    res.summary = worst_case(res.outputs)
    passed, why = evaluate_gates(gate_list, res.summary)
    res.status = "pass" if passed else "fail"
    if not passed:
        res.worst_output = _worst_output(res.outputs, gate_list) or next(iter(res.outputs), None)
        if res.worst_output and len(res.outputs) > 1:
            why = f"{why} (worst output: {res.worst_output})"
    res.why = why
    res.tightest = [t for g in gate_list if (t := g.tightest(res.summary))]
    return res


def _worst_output(per_output: dict[str, dict[str, Any]], gates: list[Gate]) -> str | None:
    """The output that fails worst: NaN/Inf first, else the worst value of the first gate that fails."""
    for name, m in per_output.items():
        if m.get("nonfinite"):
            return name
    for g in gates:
        failing = [(m.get(g.metric), name) for name, m in per_output.items() if not g.evaluate(m)[0]]
        if failing:
            measured = [f for f in failing if f[0] is not None]
            if not measured:
                return failing[0][1]
            pick = min if HIGHER_IS_BETTER.get(g.metric, True) else max
            return pick(measured)[1]
    return None
