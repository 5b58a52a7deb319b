"""What a report concludes, per target: the variant to ship and why, the accuracy-vs-latency Pareto
front, and the figure each plot puts on its accuracy axis. Pure functions of the report dict, shared
by the HTML and Markdown writers."""

from __future__ import annotations

import re
from typing import Any

Row = dict[str, Any]


def targets(report: dict[str, Any]) -> list[str]:
    """The report's targets (report names, e.g. ``onnxruntime-cpu``) in the order their rows come."""
    return list(dict.fromkeys(r["target"] for r in report.get("variants", [])))


def rows_for(report: dict[str, Any], target: str) -> list[Row]:
    return [r for r in report.get("variants", []) if r["target"] == target]


def accuracy_axis(report: dict[str, Any]) -> tuple[str, str]:
    """(metric key, axis label): accuracy or top-1 agreement for classifiers, worst-sample cosine else."""
    if report.get("task") == "classification":
        if any("accuracy" in r.get("metrics", {}) for r in report.get("variants", [])):
            return "accuracy", "accuracy (%)"
        return "top1_agreement", "top-1 agreement"
    return "cosine_min", "worst-sample cosine"


def pareto_front(rows: list[Row], key: str) -> list[str]:
    """Ids of the rows no other row beats on both latency (lower p50) and ``key`` (higher), fastest first."""
    pts = sorted((r for r in rows if (r.get("latency_ms") or {}).get("p50") and key in r.get("metrics", {})),
                 key=lambda r: (r["latency_ms"]["p50"], -r["metrics"][key]))
    front, best = [], float("-inf")
    for r in pts:
        if r["metrics"][key] > best:
            front.append(r["id"])
            best = r["metrics"][key]
    return front


def _gate_text(row: Row) -> str:
    """The row's gates with the figure each one judged: ``cosine_min>=0.98 (0.9931)``."""
    parts = []
    for g in row.get("gate", {}).get("gates") or []:
        metric = re.match(r"[a-z0-9_]+", str(g))
        value = row.get("metrics", {}).get(metric.group(0)) if metric else None
        parts.append(f"{g} ({value:.5g})" if isinstance(value, int | float) else str(g))
    return ", ".join(parts)


def _uncertainty(row: Row) -> str:
    ci = (row.get("latency_stats") or {}).get("ci_rel")
    return f" ±{ci:.1%}" if isinstance(ci, int | float) else ""


def recommend(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per target: ``{"ship": id or None, "variant": name or None, "why": sentence}``.

    The chosen row (optimize marks the fastest passing variant per target) is named with what made
    it: its latency and uncertainty, speed-up and size against FP32, its gate figures, and any
    runner-up whose latency is within the measurement's uncertainty. With no passing variant, why not."""
    out: dict[str, dict[str, Any]] = {}
    for target in targets(report):
        rows = rows_for(report, target)
        passing = [r for r in rows if r.get("gate", {}).get("passed") and (r.get("latency_ms") or {}).get("p50")]
        chosen = next((r for r in rows if r.get("chosen")), None)
        if chosen is None:
            out[target] = {"ship": None, "variant": None, "why": _nothing_passes(rows, target)}
            continue
        lat = chosen["latency_ms"]["p50"]
        bits = [f"the fastest of the {len(passing)} variant(s) that pass the gate on {target}: "
                f"p50 {lat:.3f} ms{_uncertainty(chosen)}"]
        if chosen.get("speedup_vs_ort_fp32") and chosen["variant"] != "fp32":
            bits.append(f"{chosen['speedup_vs_ort_fp32']:.2f}× ONNX Runtime FP32")
        if chosen.get("speedup_vs_pytorch"):
            bits.append(f"{chosen['speedup_vs_pytorch']:.2f}× PyTorch eager")
        if chosen.get("size_ratio") and chosen["variant"] != "fp32":
            bits.append(f"{chosen['size_ratio']:.0%} of the FP32 file")
        gate = _gate_text(chosen)
        why = ", ".join(bits) + (f"; gate {gate}" if gate else "")
        ci = (chosen.get("latency_stats") or {}).get("ci_rel") or 0.0
        ties = [r for r in passing if r is not chosen and r["latency_ms"]["p50"] <= lat * (1 + 2 * ci)]
        if ties:
            tied = ", ".join(f"{r['variant']} {r['latency_ms']['p50']:.3f} ms" for r in ties)
            why += f"; within the measurement's uncertainty of it: {tied}"
        out[target] = {"ship": chosen["id"], "variant": chosen["variant"], "why": why + "."}
    return out


def _nothing_passes(rows: list[Row], target: str) -> str:
    if not rows:
        return f"nothing was built for {target}."
    if all(r.get("status") == "not_run" for r in rows):
        return f"nothing ran on {target} here: {rows[0].get('gate', {}).get('why', '')}"
    failed = [r for r in rows if r.get("status") == "fail"]
    if failed:
        best = max(failed, key=lambda r: r.get("metrics", {}).get("cosine_min", float("-inf")))
        return f"no variant passes the gate on {target}; closest: {best['variant']} ({best['gate'].get('why', '')})."
    return f"no variant passes the gate on {target} with a latency measured ({rows[0]['gate'].get('why', '')})."
