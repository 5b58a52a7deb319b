"""The one comparison engine: candidate outputs against reference outputs, under gates.

Everything in edgeship that asks "does this model still compute what the reference does?" comes
here: ``edgeship check`` (after running the subjects), export parity, compression's evaluation, QAT,
the mixed-precision search and the device health check. Outputs are lists of feeds (one dict of
arrays per sample); the verdict is a :class:`CandidateResult` with per-output metrics, the worst case
over outputs, each gate's verdict, and the tightest tolerance that would have passed.

Every verdict says how far to trust it: ``rows`` (the n it is over), ``stats`` per summary metric
(n, a mean's 95% interval, the noise margin, the sample that produced the worst case) and
``marginal`` (the gates met by less than their noise margin: a pass that other data of the same
kind may well turn into a failure). :func:`with_probes` adds the verdict on the stress probes
(``check/probes.py``): with the probe gate on, a candidate passes only when both pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeship.check.gates import Gate, default_gates, evaluate_gates, parse_gates
from edgeship.check.metrics import HIGHER_IS_BETTER, is_classifier, output_metrics, worst_case, worst_case_stats

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
    rows: int = 0  # the n of the verdict: rows compared (batch items over all samples)
    # per summary metric: n, ci95 (means), noise_margin, worst_row and worst_sample (what produced it)
    stats: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    marginal: list[str] = dataclasses.field(default_factory=list)  # gates met by less than their noise margin
    # the verdict on the stress probes (check/probes.py): status, gates, why, summary, stats, rows,
    # kinds, gated (whether it decides the candidate's status)
    probes: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def clear_pass(self) -> bool:
        """Passed, with no gate met by less than its noise margin (held-out data and probes)."""
        return self.passed and not self.marginal and not (self.probes or {}).get("marginal")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_gates(gates: Sequence[str | Gate] | None, precision: str = "fp32", task: str = "other",
                  model_gates: Sequence[str] = (), labelled: bool = False) -> list[Gate]:
    """``None``: the defaults of ``precision`` (and the task or the model's gate for lossy ones;
    ``labelled``: the data has labels); a list (possibly empty): exactly those gates."""
    if gates is None:
        return default_gates(precision, task, tuple(model_gates), labelled)
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
          outputs: Sequence[str] | None = None, sample_ids: Sequence[str] | None = None) -> CandidateResult:
    """Judge ``candidate`` against ``reference`` (same samples, same order).

    ``gates=None`` uses the defaults by precision and task; ``[]`` checks only that the outputs are
    finite. ``outputs`` limits the comparison to those reference outputs. Outputs that cannot be
    compared (missing, other shapes) give status ``error`` with the reason; NaN/Inf always fail.
    ``sample_ids`` (one per sample) name the samples behind worst cases (default ``#index``).
    """
    gate_list = resolve_gates(gates, precision, task, model_gates, labels is not None)
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
    res.rows = next(iter(res.outputs.values()))["rows"] if res.outputs else 0
    res.stats = _named(worst_case_stats(res.outputs, res.summary), _row_names(reference, sample_ids))
    passed, why = evaluate_gates(gate_list, res.summary)
    named = broken_outputs(reference, candidate, mapping, precision)
    if named:  # what happened, before the metrics it made fail
        passed, why = False, f"{named}; {why}"
    res.marginal = marginal_gates(gate_list, res.summary, res.stats) if passed else []
    res.status = "pass" if passed else "fail"
    if not passed:
        res.worst_output = _worst_output(res.outputs, gate_list) or next(iter(res.outputs), None)
        if res.worst_output and len(res.outputs) > 1:
            why = f"{why} (worst output: {res.worst_output})"
    if res.marginal:
        why = f"{why}; marginal: {', '.join(res.marginal)} met by less than the noise margin (n={res.rows})"
    res.why = why
    res.tightest = [t for g in gate_list if (t := g.tightest(res.summary))]
    return res


# What broken outputs of a precision usually mean, and what to do: (precision family, "nonfinite" or "zero")
BROKEN_HINTS = {
    ("float16", "nonfinite"): "the activations overflow fp16 (largest 65504); keep the overflowing layers in fp32",
    ("float16", "zero"): "the activations underflow fp16 (smallest 6e-8); keep those layers in fp32",
    ("quantized", "zero"): "the activations fall below the quantizer's resolution; keep those layers in higher "
                           "precision",
    ("quantized", "nonfinite"): "the quantized graph overflows (extreme calibration values or scales); check the "
                                "calibration data",
    ("float32", "nonfinite"): "the runtime computes NaN/Inf where the reference does not",
    ("float32", "zero"): "the runtime outputs zeros where the reference does not",
}
_FAMILY = {"fp32": "float32", "fp16": "float16", "bf16": "float16"}


def broken_outputs(reference: Sequence[Feeds], candidate: Sequence[Feeds], mapping: dict[str, str],
                   precision: str) -> str:
    """Broken outputs named (NaN/Inf values, or zeros where the reference has values) with what it
    usually means at ``precision``: ``"output 'logits': 1,920 of 1,920 values are NaN: the activations
    overflow fp16 ..."``; "" when every output holds values."""
    from edgeship.core.broken import broken

    family = _FAMILY.get(precision, "quantized")
    parts = []
    for rname, cname in mapping.items():
        what = broken([o[cname] for o in candidate], [o[rname] for o in reference])
        if what:
            kind = "zero" if what.startswith("all ") else "nonfinite"
            parts.append(f"output {rname!r}: {what}: {BROKEN_HINTS[(family, kind)]}")
    return "; ".join(parts)


def marginal_gates(gates: list[Gate], summary: dict[str, Any], stats: dict[str, dict[str, Any]]) -> list[str]:
    """The passing gates whose measured value is closer to the threshold than its noise margin."""
    out = []
    for g in gates:
        value, margin = summary.get(g.metric), stats.get(g.metric, {}).get("noise_margin")
        if value is None or margin is None or not g.evaluate(summary)[0]:
            continue
        if abs(float(value) - g.value) < float(margin):
            out.append(str(g))
    return out


def _row_names(samples: Sequence[Feeds], sample_ids: Sequence[str] | None) -> list[str]:
    """A name per row (batch item): the sample's id, with ``[row]`` where a sample has several."""
    names: list[str] = []
    for i, s in enumerate(samples):
        first = next(iter(s.values())) if s else None
        rows = int(np.shape(first)[0]) if first is not None and np.ndim(first) else 1
        base = sample_ids[i] if sample_ids is not None and i < len(sample_ids) else f"#{i}"
        names.extend([base] if rows == 1 else [f"{base}[{r}]" for r in range(rows)])
    return names


def _named(stats: dict[str, dict[str, Any]], row_names: list[str]) -> dict[str, dict[str, Any]]:
    for st in stats.values():
        row = st.get("worst_row")
        if row is not None and 0 <= row < len(row_names):
            st["worst_sample"] = row_names[row]
    return stats


def with_probes(result: CandidateResult, probes: CandidateResult, gated: bool = True,
                kinds: Sequence[str] | None = None) -> CandidateResult:
    """``result`` (the held-out verdict) with the verdict on the stress probes beside it. ``gated``:
    a failing probe verdict fails the candidate (the default); otherwise it is reported only.
    ``kinds`` (one per probe) say which probe families the worst cases come from."""
    worst = {m: st.get("worst_sample") for m, st in probes.stats.items() if st.get("worst_sample")}
    result.probes = {"status": probes.status, "gated": gated, "gates": probes.gates, "why": probes.why,
                     "rows": probes.rows, "summary": {k: v for k, v in probes.summary.items() if k != "nonfinite"},
                     "stats": probes.stats, "marginal": probes.marginal, "worst_samples": worst,
                     "kinds": dict(sorted({k: list(kinds).count(k) for k in set(kinds)}.items())) if kinds else {}}
    if gated and result.status == "pass" and probes.status != "pass":
        result.status = "fail" if probes.status == "fail" else probes.status
        result.why = f"probes: {probes.why}; held-out: {result.why}"
    elif probes.status != "pass":
        result.why = f"{result.why}; probes{'' if gated else ' (not gated)'}: {probes.why}"
    return result


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
