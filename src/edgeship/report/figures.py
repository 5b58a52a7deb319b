"""The report's plots as Plotly figure specifications (plain dicts: ``{"data": [...], "layout": {...}}``),
drawn in the page by the Plotly JavaScript inlined into it (``plotly_js``). Nothing here imports
Plotly's Python API: the specifications are JSON, and the JavaScript is read from the pinned
``plotly`` wheel's package data.

Per target:

- :func:`pareto_figure`: accuracy against p50 latency, one trace per variant (the legend names the
  points, so labels never overlap), marker area by file size, filled when the gate passes and open
  when it fails, a star on the variant to ship, the Pareto front of the passing variants as a dashed
  line, and a hover box
  with the figures (p50/p90/p99 with the interval of the median, size, gate).
- :func:`latency_figure`: each variant's latency distribution as a box (quartiles, whiskers at the
  1st and 99th percentiles) drawn from the percentiles the benchmark recorded.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from edgeship.report.summary import accuracy_axis, pareto_front, rows_for

PASS_COLOUR, FAIL_COLOUR, FRONT_COLOUR = "#1a7f37", "#cf222e", "#57606a"
PALETTE = ("#0969da", "#8250df", "#bf8700", "#1a7f37", "#cf222e", "#1b7c83", "#953800", "#6e7781", "#e16f24",
           "#4d2d00", "#116329", "#a40e26")
Figure = dict[str, Any]


@functools.lru_cache(maxsize=1)
def plotly_js() -> str | None:
    """plotly.min.js from the installed ``plotly`` wheel (None when it is not installed)."""
    from importlib import resources

    try:
        return (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def _hover(row: dict[str, Any], key: str, label: str) -> str:
    lat = row.get("latency_ms") or {}
    st = row.get("latency_stats") or {}
    ci = f" ±{st['ci_rel']:.1%}" if isinstance(st.get("ci_rel"), int | float) else ""
    size = f"{row['size_bytes'] / 1e6:.2f} MB" if row.get("size_bytes") else "–"
    lines = [f"<b>{row['id']}</b>{' (ship)' if row.get('chosen') else ''}",
             f"p50 {lat.get('p50', math.nan):.3f} ms{ci} · p90 {lat.get('p90', math.nan):.3f} · "
             f"p99 {lat.get('p99', math.nan):.3f}",
             f"{label} {row['metrics'][key]:.5g}", f"size {size} · {row.get('precision', '')}",
             f"gate: {'pass' if row['gate']['passed'] else 'FAIL'}"]
    why = row["gate"].get("why") or ""
    if why:
        lines.append(why[:120])
    return "<br>".join(lines)


def pareto_figure(report: dict[str, Any], target: str) -> Figure | None:
    """Accuracy against p50 latency for ``target``'s rows (None: no row has both figures)."""
    key, label = accuracy_axis(report)
    rows = [r for r in rows_for(report, target) if (r.get("latency_ms") or {}).get("p50")
            and key in r.get("metrics", {})]
    if not rows:
        return None
    biggest = max((r.get("size_bytes") or 0) for r in rows) or 1
    traces: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        size = 12 + 26 * math.sqrt((r.get("size_bytes") or 0) / biggest)  # marker area ∝ file size
        passed = r["gate"]["passed"]
        colour = PALETTE[i % len(PALETTE)]
        traces.append({
            "type": "scatter", "mode": "markers", "name": r["variant"] + (" ★" if r.get("chosen") else ""),
            "x": [r["latency_ms"]["p50"]], "y": [r["metrics"][key]],
            "marker": {"size": [size], "color": colour if passed else FAIL_COLOUR,  # open symbols: the line's
                       "symbol": "star" if r.get("chosen") else ("circle" if passed else "circle-open"),
                       "line": {"color": colour if passed else FAIL_COLOUR, "width": 2}},
            "hovertext": [_hover(r, key, label)], "hoverinfo": "text",
            "meta": {"id": r["id"], "chosen": bool(r.get("chosen")), "passed": passed},
        })
    front = pareto_front([r for r in rows if r["gate"]["passed"]], key)  # what could ship
    by_id = {r["id"]: r for r in rows}
    if len(front) > 1:
        traces.append({"type": "scatter", "mode": "lines", "name": "Pareto front", "hoverinfo": "skip",
                       "x": [by_id[i]["latency_ms"]["p50"] for i in front],
                       "y": [by_id[i]["metrics"][key] for i in front],
                       "line": {"dash": "dash", "color": FRONT_COLOUR, "width": 1}})
    layout = {"title": {"text": f"{label} against latency on {target}"}, "height": 420,
              "xaxis": {"title": {"text": "p50 latency (ms)"}, "rangemode": "tozero", "zeroline": False},
              "yaxis": {"title": {"text": label}, "tickformat": ".4~g"},
              "legend": {"title": {"text": "variant (★ ship)"}}, "margin": {"l": 70, "r": 20, "t": 50, "b": 50},
              "hoverlabel": {"align": "left"}}
    return {"data": traces, "layout": layout}


def latency_figure(report: dict[str, Any], target: str) -> Figure | None:
    """Box plots of each of ``target``'s variants' latency from its recorded percentiles (None: none recorded)."""
    traces = []
    for i, r in enumerate(rows_for(report, target)):
        q = r.get("latency_quantiles_ms")
        if not q or len(q) != 101:
            continue
        traces.append({"type": "box", "name": r["variant"], "orientation": "h", "y": [r["variant"]],
                       "q1": [q[25]], "median": [q[50]], "q3": [q[75]], "lowerfence": [q[1]], "upperfence": [q[99]],
                       "marker": {"color": PALETTE[i % len(PALETTE)]}, "hoverinfo": "x+name",
                       "meta": {"id": r["id"], "p0": q[0], "p100": q[100]}})
    if not traces:
        return None
    layout = {"title": {"text": f"latency distribution on {target} (whiskers: 1st–99th percentile)"},
              "height": 120 + 40 * len(traces), "showlegend": False,
              "xaxis": {"title": {"text": "latency (ms)"}, "rangemode": "tozero"},
              "margin": {"l": 110, "r": 20, "t": 50, "b": 50}}
    return {"data": traces, "layout": layout}
