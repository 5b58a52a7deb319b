"""Report writers: ``report.json`` (for tools), ``report.md`` (for reviews) and a self-contained
``report.html`` (tables and an accuracy-vs-latency plot as inline SVG; no network, no scripts)."""

from __future__ import annotations

import html
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


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    out = []
    base = report.get("baseline")
    if base and base.get("latency_ms"):
        lat = base["latency_ms"]
        fp32 = next((r for r in report["variants"] if r["id"] == "fp32@onnxruntime" and r.get("latency_ms")), None)
        x_ort = fp32["latency_ms"]["p50"] / lat["p50"] if fp32 else None
        out.append(["pytorch eager (reference)", base["target"], "fp32", "–", _f(lat["p50"]), _f(lat["p90"]),
                    _f(lat["p99"]), _f(x_ort, ".3g") + ("×" if x_ort else ""), "1.00×", "1 / 1", "–", "–",
                    "reference", ""])
    for r in report["variants"]:
        m = r.get("metrics", {})
        lat = r.get("latency_ms") or {}
        size = "–" if not r.get("size_bytes") else f"{r['size_bytes'] / 1e6:.2f} ({r.get('size_ratio', 1):.0%})"
        cos = "–" if "cosine_mean" not in m else f"{m['cosine_mean']:.5f} / {m['cosine_min']:.5f}"
        acc = "–" if "accuracy" not in m else f"{m['accuracy']:.2f} ({-m.get('accuracy_drop', 0):+.2f})"
        gate = {"pass": "pass", "fail": "FAIL", "not_run": "not run", "error": "error"}.get(r.get("status"), "?")
        out.append([r["variant"], r["target"], r["precision"], size, _f(lat.get("p50")), _f(lat.get("p90")),
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


HEADER = ["variant", "target", "precision", "size MB", "p50 ms", "p90 ms", "p99 ms", "× ORT", "× PyTorch",
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
    lines += ["", "| " + " | ".join(header(report)) + " |", "|" + "---|" * len(header(report))]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    lines += ["", "## Gate verdicts", ""]
    for r in report["variants"]:
        lines.append(f"- **{r['id']}**: {r['gate']['why'] or r.get('status')}")
        if r.get("tightest"):
            lines.append(f"  - tightest passing tolerance: {', '.join(r['tightest'])}")
        if r.get("first_divergence"):
            d = r["first_divergence"]
            lines.append(f"  - error first appears at node `{d['node']}` ({d['op_type']}), tensor `{d['tensor']}`: "
                         f"cosine_min {d['cosine_min']:.5f}")
    if report.get("skipped"):
        lines += ["", "## Not built", ""] + [f"- {s}" for s in report["skipped"]]
    s = report.get("system", {})
    lines += ["", "## Columns", ""] + [f"- **{k}**: {v}" for k, v in COLUMNS.items()]
    lines += ["", f"System: {s.get('cpu')}, {s.get('usable_cores')} cores, flags {' '.join(s.get('flags', []))}; "
              + ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items()), ""]
    return "\n".join(lines)


def _accuracy_axis(report: dict[str, Any]) -> tuple[str, str]:
    if report.get("task") == "classification":
        if any("accuracy" in r.get("metrics", {}) for r in report["variants"]):
            return "accuracy", "accuracy (%)"
        return "top1_agreement", "top-1 agreement"
    return "cosine_min", "worst-sample cosine"


def plot_svg(report: dict[str, Any], width: int = 560, height: int = 320) -> str:
    """Accuracy (y) against p50 latency (x), one point per variant; passing points are filled."""
    key, label = _accuracy_axis(report)
    pts = [(r["latency_ms"]["p50"], r["metrics"][key], r) for r in report["variants"]
           if r.get("latency_ms") and key in r.get("metrics", {})]
    if not pts:
        return "<p>No variant has both a latency and an accuracy figure to plot.</p>"
    pad_l, pad_r, pad_t, pad_b = 70, 20, 20, 45
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = 0.0, max(xs) * 1.15
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.01 * abs(y0 or 1), y1 + 0.01 * abs(y1 or 1)
    span = y1 - y0
    y0, y1 = y0 - 0.1 * span, y1 + 0.1 * span

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return height - pad_b - (y - y0) / (y1 - y0) * (height - pad_t - pad_b)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{label} against latency">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" '
             'fill="#fafafa" stroke="#999"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        xv = x0 + (x1 - x0) * i / 4
        parts.append(f'<text x="{pad_l - 6}" y="{sy(yv) + 4:.1f}" font-size="11" text-anchor="end">{yv:.4g}</text>')
        parts.append(f'<text x="{sx(xv):.1f}" y="{height - pad_b + 16}" font-size="11" text-anchor="middle">'
                     f'{xv:.3g}</text>')
    parts.append(f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 8}" font-size="12" text-anchor="middle">'
                 'p50 latency (ms)</text>')
    parts.append(f'<text x="14" y="{(height - pad_b) / 2:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(height - pad_b) / 2:.0f})">{html.escape(label)}</text>')
    one_target = len({r["target"] for _, _, r in pts}) == 1
    for x, y, r in pts:
        ok = r["gate"]["passed"]
        colour = "#1a7f37" if ok else "#cf222e"
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{7 if r.get("chosen") else 5}" '
                     f'fill="{colour if ok else "white"}" stroke="{colour}" stroke-width="2">'
                     f'<title>{html.escape(r["id"])}: {x:.3f} ms, {label} {y:.5g}</title></circle>')
        label = r["variant"] if one_target else r["id"]
        parts.append(f'<text x="{sx(x) + 9:.1f}" y="{sy(y) - 6:.1f}" font-size="11">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: dict[str, Any]) -> str:
    e = html.escape
    d = report["data"]
    b = report.get("bench", {})
    s = report.get("system", {})
    head = "".join(f"<th>{e(h)}</th>" for h in header(report))
    body = "".join("<tr" + (' class="chosen"' if "★" in row else "") + ">" + "".join(f"<td>{e(c)}</td>" for c in row)
                   + "</tr>" for row in table_rows(report))
    verdicts = "".join(f"<li><b>{e(r['id'])}</b>: {e(r['gate']['why'] or r.get('status', ''))}"
                       + (f"<br><small>tightest passing tolerance: {e(', '.join(r['tightest']))}</small>"
                          if r.get("tightest") else "") + "</li>" for r in report["variants"])
    cols = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in COLUMNS.items())
    versions = ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeship report: {e(report['model'])}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#1f2328}}
table{{border-collapse:collapse;font-size:14px}} th,td{{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:right}}
th:first-child,td:first-child,td:nth-child(2){{text-align:left}} tr.chosen{{background:#dafbe1}}
dt{{font-weight:600;float:left;width:9rem}} dd{{margin-left:10rem}} small{{color:#57606a}}
</style></head><body>
<h1>edgeship report: {e(report['model'])}</h1>
<p>Held-out data <code>{e(str(d['eval']))}</code> ({d['samples']} samples, {d['rows']} rows); calibration
<code>{e(str(d.get('calib')))}</code>. Latency at batch {b.get('batch')}{f", sequence {b['seq']}" if b.get('seq') else ''},
threads {e(str(b.get('threads') or 'default'))}. Gate for lossy variants: {e(', '.join(report['gates']) or 'by precision')}.
Created {e(report.get('created', ''))} by edgeship {e(report.get('edgeship', ''))}.</p>
{"".join(f'<p style="color:#9a6700"><b>Warning:</b> {e(w)}</p>' for w in report.get("warnings", []))}
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Accuracy against latency</h2>
{plot_svg(report)}
<p><small>Filled points pass the gate on their target; the larger point is the chosen variant.</small></p>
<h2>Gate verdicts</h2><ul>{verdicts}</ul>
{"<h2>Not built</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.get("skipped", [])) + "</ul>" if report.get("skipped") else ""}
<h2>Columns</h2><dl>{cols}</dl>
<h2>System</h2><p>{e(str(s.get('cpu')))} · {s.get('usable_cores')} usable cores · {e(' '.join(s.get('flags', [])))}
· {e(str(s.get('os')))} · Python {e(str(s.get('python')))}<br><small>{e(versions)}</small></p>
</body></html>
"""
