"""Choosing among candidates the way a held-out verdict would: on selection data and probes.

A search inside a target's converter (OpenVINO's INT8: which NNCF settings) makes several
candidates and must keep one; it cannot judge them itself (targets sit below check), so the caller
hands it a *selector* built here. The selector runs the reference and each candidate on the
selection data (a split disjoint from calibration and from the held-out test data) and on the
selection probes (``check/probes.py``, seed 1: disjoint from the probes ``edgeship check`` judges
by), judges each under the gates tightened by ``margin``, and names the candidate that passes
with the most room (or, when none passes, the closest). Every candidate's verdict is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgeship.check.gates import Gate, parse_gates, slack, tightened
from edgeship.check.judge import judge
from edgeship.check.metrics import worst_case
from edgeship.core.artifact import Model
from edgeship.core.data import Dataset

Selector = Callable[[list[tuple[str, Model]]], tuple[int, list[dict[str, Any]]]]
REPORTED = ("cosine_mean", "cosine_min", "top1_agreement_confident", "top5_agreement", "top1_agreement",
            "accuracy_drop")


def run_on(model: Model, samples: list[dict[str, Any]], threads: int | None = 2) -> list[dict[str, Any]]:
    from edgeship.targets.base import runner_for

    with runner_for(model, threads=threads) as runner:
        return [runner.infer(s) for s in samples]


def int8_selector(reference: Model, select: Dataset, gates: Sequence[str], *, margin: float = 0.25,
                  probes: bool = True, calib: Dataset | None = None, threads: int | None = 2) -> Selector:
    """A selector judging candidates against ``reference`` (the FP32 model) on ``select`` and the
    selection probes (at the edges of ``calib``'s range too, when given), under ``gates`` tightened
    by ``margin``."""
    from edgeship.check.probes import SELECT_SEED, build_probes

    search_gates: list[Gate] = tightened(parse_gates(list(gates)), margin)
    probe_set = build_probes(reference.io, calib=calib, seed=SELECT_SEED) if probes else None
    ref = run_on(reference, select.samples, threads)
    probe_ref: list[dict[str, Any]] = []
    if probe_set is not None:
        try:
            probe_ref = run_on(reference, probe_set.samples, threads)
        except Exception:  # runtimes' own types: the reference cannot take these probes
            probe_set = None

    def select_one(candidates: list[tuple[str, Model]]) -> tuple[int, list[dict[str, Any]]]:
        records = []
        for label, model in candidates:
            verdict = judge(ref, run_on(model, select.samples, threads), search_gates, labels=select.labels,
                            by_position=True, name=label, sample_ids=select.sample_ids())
            record: dict[str, Any] = {"label": label, "selection": _brief(verdict), "passed": verdict.passed}
            summaries = {"selection": verdict.summary}
            if probe_set is not None:
                pv = judge(probe_ref, run_on(model, probe_set.samples, threads),
                           [g for g in search_gates if "accuracy" not in g.metric], by_position=True,
                           name=f"{label} (probes)", sample_ids=probe_set.ids)
                record["probes"] = _brief(pv)
                record["passed"] = record["passed"] and pv.passed
                summaries["probes"] = pv.summary
            record["slack"] = slack(search_gates, worst_case(summaries))
            records.append(record)
        passing = [i for i, r in enumerate(records) if r["passed"]]
        pool = passing or list(range(len(records)))
        best = max(pool, key=lambda i: records[i]["slack"])
        for i, r in enumerate(records):
            r["chosen"] = i == best
        return best, records

    select_one.gates = [str(g) for g in search_gates]  # type: ignore[attr-defined]
    select_one.data = select.name  # type: ignore[attr-defined]
    return select_one


def _brief(verdict: Any) -> dict[str, Any]:
    return {"status": verdict.status, "rows": verdict.rows, "why": verdict.why,
            **{k: verdict.summary[k] for k in REPORTED if k in verdict.summary}}


def selector_for(select: Any, gates: Sequence[str] | None = None, calib: Any = None,
                 precision: str = "int8") -> Callable[[Model], Selector]:
    """For ``edgeship convert --select``: a function that, given the FP32 model being converted,
    builds its :func:`int8_selector` on ``select`` (a data spec or Dataset) under ``gates`` — by
    default the model's own lossy gates (its task's) — with probes at the edges of ``calib``."""
    from edgeship.check.gates import default_gates
    from edgeship.core.data import load_data

    def build(reference: Model) -> Selector:
        chosen = list(gates) if gates else [str(g) for g in default_gates(
            precision, str(reference.facts.get("task", "other")), tuple(reference.facts.get("gates", ())))]
        data = calib if isinstance(calib, Dataset) or calib is None else load_data(calib, reference.io)
        select_data = select if isinstance(select, Dataset) else load_data(select, reference.io)
        return int8_selector(reference, select_data, chosen, calib=data)

    return build
