"""Report writers: ``report.json`` (for tools; its schema is versioned, ``report/schema.py`` and
docs/report-schema.md), ``report.md`` (for pull requests: what to ship per target, then a table per
target) and a self-contained ``report.html`` (``report/html.py``: per-target Pareto plots, latency
distributions, tables and hardware maps, with Plotly inlined; nothing fetched when opened)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgeship.core import atomic

# Column meanings, shown under the tables and in the README.
COLUMNS: dict[str, str] = {
    "variant": "how the model was made (fp32 = the export; others are compressed variants)",
    "target": "runtime the variant was checked and timed on",
    "size": "file size on disk (MB) and its ratio to the FP32 ONNX file",
    "p50/p90/p99": "latency percentiles in ms at the stated batch and sequence, in a fresh process",
    "±95%": "half the 95% confidence interval of the p50, relative to it (the benchmark repeats until ±2% or a cap)",
    "× ORT": "speed-up over ONNX Runtime FP32 (p50 ratio, same run)",
    "× PyTorch": "speed-up over PyTorch eager FP32 (p50 ratio, same run)",
    "cos mean/min": "cosine similarity to the FP32 reference outputs, mean and worst sample",
    "top-1": "fraction of samples whose top class matches the reference's",
    "acc": "task accuracy against labels (points), where the data has labels",
    "gate": "pass/fail of the accuracy gate on the target runtime, and why",
    "chosen": "★ marks the fastest variant that passes the gate on its target",
    "arena": "TFLite Micro tensor arena (RAM) the model needs, in bytes (tflite-micro rows only)",
}


def write_reports(report: dict[str, Any], run_dir: Path) -> dict[str, Path]:
    paths = {
        "json": atomic.write_json(run_dir / "report.json", report),
        "md": atomic.write_text(run_dir / "report.md", to_markdown(report)),
        "html": atomic.write_text(run_dir / "report.html", to_html(report)),
    }
    return paths


def _f(v: Any, fmt: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v, fmt)


def table_rows(report: dict[str, Any], target: str | None = None) -> list[list[str]]:
    """The table's rows (the PyTorch baseline first, as the reference); only ``target``'s when given."""
    out = []
    base = report.get("baseline")
    if base and base.get("latency_ms"):
        lat = base["latency_ms"]
        fp32 = next((r for r in report["variants"] if r["id"] == "fp32@onnxruntime" and r.get("latency_ms")), None)
        x_ort = fp32["latency_ms"]["p50"] / lat["p50"] if fp32 else None
        out.append(["pytorch eager (reference)", base["target"], "fp32", "–", _f(lat["p50"]), "–", _f(lat["p90"]),
                    _f(lat["p99"]), _f(x_ort, ".3g") + ("×" if x_ort else ""), "1.00×", "1 / 1", "–", "–",
                    "reference", ""])
    for r in report["variants"]:
        if target is not None and r["target"] != target:
            continue
        m = r.get("metrics", {})
        lat = r.get("latency_ms") or {}
        ci = (r.get("latency_stats") or {}).get("ci_rel")
        size = "–" if not r.get("size_bytes") else f"{r['size_bytes'] / 1e6:.2f} ({r.get('size_ratio', 1):.0%})"
        cos = "–" if "cosine_mean" not in m else f"{m['cosine_mean']:.5f} / {m['cosine_min']:.5f}"
        acc = "–" if "accuracy" not in m else f"{m['accuracy']:.2f} ({-m.get('accuracy_drop', 0):+.2f})"
        gate = {"pass": "pass", "fail": "FAIL", "not_run": "not run", "error": "error"}.get(r.get("status"), "?")
        out.append([r["variant"], r["target"], r["precision"], size, _f(lat.get("p50")),
                    "–" if ci is None else f"{ci:.1%}", _f(lat.get("p90")),
                    _f(lat.get("p99")),
                    _f(r.get("speedup_vs_ort_fp32"), ".2f") + ("×" if r.get("speedup_vs_ort_fp32") else ""),
                    _f(r.get("speedup_vs_pytorch"), ".2f") + ("×" if r.get("speedup_vs_pytorch") else ""),
                    cos, _f(m.get("top1_agreement"), ".4f"), acc, gate, "★" if r.get("chosen") else ""])
        if _has_arena(report):
            out[-1].append(str(r["arena_bytes"]) if r.get("arena_bytes") else "–")
    if _has_arena(report) and base and base.get("latency_ms"):
        out[0].append("–")
    return out


def _has_arena(report: dict[str, Any]) -> bool:
    return any(r.get("arena_bytes") for r in report["variants"])


def header(report: dict[str, Any]) -> list[str]:
    return [*HEADER, "arena B"] if _has_arena(report) else list(HEADER)


HEADER = ["variant", "target", "precision", "size MB", "p50 ms", "±95%", "p90 ms", "p99 ms", "× ORT", "× PyTorch",
          "cos mean / min", "top-1", "acc (drop)", "gate", "chosen"]


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# edgeship report: {report['model']}", ""]
    d = report["data"]
    b = report.get("bench", {})
    lines.append(f"Held-out data `{d['eval']}` ({d['samples']} samples, {d['rows']} rows); calibration "
                 f"`{d.get('calib')}`. Latency at batch {b.get('batch')}"
                 + (f", sequence {b['seq']}" if b.get("seq") else "") + f"; gate for lossy variants: "
                 f"{', '.join(report['gates']) or 'by precision'}.")
    lines += [f"\n> **Warning:** {w}" for w in report.get("warnings", [])]
    from edgeship.report.summary import recommend, targets

    lines += ["", "## What to ship", ""]
    for t, a in (report.get("recommendation") or recommend(report)).items():
        lines.append(f"- **{t}**: " + (f"ship `{a['variant']}`, " if a["ship"] else "nothing to ship: ") + a["why"])
    for t in targets(report):
        lines += ["", f"## {t}", "", "| " + " | ".join(header(report)) + " |", "|" + "---|" * len(header(report))]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(report, target=t)]
    lines += ["", "## Gate verdicts", ""]
    for r in report["variants"]:
        lines.append(f"- **{r['id']}**: {r['gate']['why'] or r.get('status')}")
        lines += [f"  - {line}" for line in verdict_stats(r)]
        if r.get("tightest"):
            lines.append(f"  - tightest passing tolerance: {', '.join(r['tightest'])}")
        if r.get("first_divergence"):
            d = r["first_divergence"]
            lines.append(f"  - error first appears at node `{d['node']}` ({d['op_type']}), tensor `{d['tensor']}`: "
                         f"cosine_min {d['cosine_min']:.5f}")
    maps = hardware_map_lines(report)
    if maps:
        lines += ["", "## Hardware map", ""] + [f"- {m}" for m in maps]
    if report.get("skipped"):
        lines += ["", "## Not built", ""] + [f"- {s}" for s in report["skipped"]]
    s = report.get("system", {})
    lines += ["", "## Columns", ""] + [f"- **{k}**: {v}" for k, v in COLUMNS.items()]
    lines += ["", f"System: {s.get('cpu')}, {s.get('usable_cores')} cores, flags {' '.join(s.get('flags', []))}; "
              + ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items()), ""]
    return "\n".join(lines)


STAT_METRICS = ("cosine_mean", "cosine_min", "top1_agreement_confident", "top5_agreement", "top1_agreement",
                "accuracy_drop", "rel_err_max")


def verdict_stats(row: dict[str, Any]) -> list[str]:
    """The held-out verdict and the probes' beside it: each figure with its n, a mean with its 95%
    interval, a worst case with the sample that produced it; marginal gates named."""
    out = []
    parts = (("held-out", row.get("metrics", {}), row.get("stats", {}), row.get("n"), None),
             ("probes", (row.get("probes") or {}).get("summary", {}), (row.get("probes") or {}).get("stats", {}),
              (row.get("probes") or {}).get("rows"), (row.get("probes") or {}).get("status")))
    for label, summary, stats, n, status in parts:
        cells = []
        for metric in STAT_METRICS:
            if metric not in summary or metric not in stats:
                continue
            st = stats[metric]
            cell = f"{metric} {_f(summary[metric], '.4f')}"
            if st.get("ci95"):
                cell += f" [{_f(st['ci95'][0], '.4f')}, {_f(st['ci95'][1], '.4f')}]"
            if st.get("n") is not None and st.get("n") != n:
                cell += f" (n={st['n']})"
            if st.get("worst_sample") and metric in ("cosine_min", "rel_err_max", "top1_agreement_confident"):
                cell += f" at {st['worst_sample']}"
            cells.append(cell)
        if cells:
            out.append(f"{label} (n={n}{', ' + status if status else ''}): " + "; ".join(cells))
    if (row.get("gate") or {}).get("marginal"):
        out.append(f"marginal: {', '.join(row['gate']['marginal'])} met by less than the noise margin")
    if row.get("chosen_why"):
        out.append(row["chosen_why"])
    if row.get("instructions"):
        out.append(f"runs on {row['instructions']}")
    return out


def hardware_map_lines(report: dict[str, Any]) -> list[str]:
    """One line per row and map target (edgeship map): partitions, fallback nodes, what falls back."""
    out = []
    for r in report["variants"]:
        for target, m in (r.get("hardware_map") or {}).items():
            if "error" in m:
                out.append(f"{r['id']} on {target}: not mapped ({m['error']})")
                continue
            s = m["summary"]
            falls = ", ".join(f"{x['count']}× {x['op']} → {x['unit'] or 'none'}" for x in m["splits"][:6])
            gates = f"; gate failed: {'; '.join(m['gates_failed'])}" if m.get("gates_failed") else ""
            out.append(f"{r['id']} on {target}: {s['partitions']} partition(s), {s['fallback_nodes']} fallback node(s)"
                       f"{', ' + falls if falls else ''}; {'loads' if s['loads'] else 'does not load'}{gates}")
    return out


def to_html(report: dict[str, Any]) -> str:
    from edgeship.report.html import to_html as page

    return page(report)
