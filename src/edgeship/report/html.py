"""The self-contained HTML report: one file, nothing fetched when it is opened (Plotly's JavaScript
is inlined; no external scripts, styles or fonts).

Layout: what to ship per target and why; then one section per target with its Pareto plot of
accuracy against latency, its latency distributions, its table, its hardware map when the run made
one, and its gate verdicts; then the runs that were not built, the column meanings, the system
fingerprint and the report's schema version. Without the ``plotly`` package the page keeps every
table and says how to get the plots.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from edgeship.report.figures import latency_figure, pareto_figure, plotly_js
from edgeship.report.summary import recommend, rows_for, targets
from edgeship.report.writers import verdict_stats

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1f2328}
table{border-collapse:collapse;font-size:14px;margin:.5rem 0}
th,td{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:right}
th:first-child,td:first-child,td:nth-child(2){text-align:left} tr.chosen{background:#dafbe1}
dt{font-weight:600;float:left;width:9rem} dd{margin-left:10rem} small{color:#57606a}
section.target{border-top:2px solid #d0d7de;margin-top:2rem;padding-top:.5rem}
.plots{display:grid;grid-template-columns:1fr;gap:1rem} .plot{min-height:300px}
.ship{background:#f6f8fa;border-left:4px solid #1a7f37;padding:.5rem 1rem} .ship.none{border-color:#cf222e}
.warn{color:#9a6700} code{background:#f6f8fa;padding:0 .2rem}
"""

# Draws every figure of the page; figures are JSON in a script element (data, not code).
DRAW = """
(function () {
  var figs = JSON.parse(document.getElementById('edgeship-figures').textContent);
  Object.keys(figs).forEach(function (id) {
    Plotly.newPlot(id, figs[id].data, figs[id].layout, {displaylogo: false, responsive: true});
  });
  document.body.setAttribute('data-plots-drawn', String(Object.keys(figs).length));
})();
"""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "target"


def to_html(report: dict[str, Any]) -> str:
    from edgeship.report.writers import COLUMNS, hardware_map_lines, header, table_rows

    e = html.escape
    d = report["data"]
    b = report.get("bench", {})
    s = report.get("system", {})
    js = plotly_js()
    figures: dict[str, Any] = {}
    advice = report.get("recommendation") or recommend(report)
    maps = hardware_map_lines(report)

    summary = "".join(
        f'<li data-target="{e(t)}" data-ship="{e(a["ship"] or "")}"><b>{e(t)}</b>: '
        + (f'ship <code class="chosen-variant">{e(a["variant"])}</code>, ' if a["ship"] else "<b>nothing to ship</b>: ")
        + f"{e(a['why'])}</li>" for t, a in advice.items())
    sections = []
    for t in targets(report):
        sid = slug(t)
        a = advice.get(t, {"ship": None, "variant": None, "why": ""})
        plots = []
        for kind, fig in (("pareto", pareto_figure(report, t)), ("latency", latency_figure(report, t))):
            if fig is not None:
                figures[f"{kind}-{sid}"] = fig
                plots.append(f'<div class="plot {kind}" id="{kind}-{sid}"></div>')
        if not plots:
            plots.append("<p>No variant on this target has both a latency and an accuracy figure to plot.</p>")
        rows = rows_for(report, t)
        ids = {r["id"] for r in rows}
        body = "".join("<tr" + (' class="chosen"' if "★" in row else "") + ">"
                       + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table_rows(report, target=t))
        head = "".join(f"<th>{e(h)}</th>" for h in header(report))
        verdicts = "".join(f"<li><b>{e(r['id'])}</b>: {e(r['gate']['why'] or r.get('status', ''))}"
                           + "".join(f"<br><small>{e(line)}</small>" for line in verdict_stats(r))
                           + (f"<br><small>tightest passing tolerance: {e(', '.join(r['tightest']))}</small>"
                              if r.get("tightest") else "") + "</li>" for r in rows)
        target_maps = [m for m in maps if m.split(" on ", 1)[0] in ids]
        hw = ("<h3>Hardware map</h3><ul>" + "".join(f"<li>{e(m)}</li>" for m in target_maps) + "</ul>"
              if target_maps else "")
        sections.append(
            f'<section class="target" id="target-{sid}" data-target="{e(t)}"><h2>{e(t)}</h2>'
            f'<p class="ship{"" if a["ship"] else " none"}">'
            + (f"Ship <b>{e(a['variant'])}</b>: " if a["ship"] else "<b>Nothing to ship</b>: ") + f"{e(a['why'])}</p>"
            f'<div class="plots">{"".join(plots)}</div>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{hw}"
            f"<h3>Gate verdicts</h3><ul>{verdicts}</ul></section>")

    cols = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in COLUMNS.items())
    versions = ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items())
    no_js = "" if js is not None or not figures else (
        '<p class="warn">The plots need the <code>plotly</code> package (pip install plotly==7.1.0, part of '
        "edgeship's dependencies); the tables below are complete without it.</p>")
    scripts = ""
    if js is not None and figures:
        data = json.dumps(figures, allow_nan=False, default=str).replace("</", "<\\/")
        scripts = (f"<script>{js}</script>\n<script type=\"application/json\" id=\"edgeship-figures\">{data}</script>\n"
                   f"<script>{DRAW}</script>")
    hw_all = ("<h2>Hardware map</h2><ul>" + "".join(f"<li>{e(m)}</li>" for m in maps) + "</ul>") if maps else ""
    skipped = ("<h2>Not built</h2><ul>" + "".join(f"<li>{e(x)}</li>" for x in report.get("skipped", [])) + "</ul>"
               if report.get("skipped") else "")
    warnings = "".join(f'<p class="warn"><b>Warning:</b> {e(w)}</p>' for w in report.get("warnings", []))
    seq = f", sequence {b['seq']}" if b.get("seq") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeship report: {e(report['model'])}</title><style>{STYLE}</style></head>
<body data-schema-version="{e(str(report.get('schema_version', '')))}">
<h1>edgeship report: {e(report['model'])}</h1>
<p>Held-out data <code>{e(str(d['eval']))}</code> ({d['samples']} samples, {d['rows']} rows); calibration
<code>{e(str(d.get('calib')))}</code>. Latency at batch {b.get('batch')}{seq}, threads
{e(str(b.get('threads') or 'default'))}. Gate for lossy variants: {e(', '.join(report['gates']) or 'by precision')}.
Created {e(report.get('created', ''))} by edgeship {e(report.get('edgeship', ''))}.</p>
{warnings}{no_js}
<section id="summary"><h2>What to ship</h2><ul>{summary}</ul></section>
{"".join(sections)}
{hw_all}{skipped}
<h2>Columns</h2><dl>{cols}</dl>
<h2>System</h2><p>{e(str(s.get('cpu')))} · {s.get('usable_cores')} usable cores · {e(' '.join(s.get('flags', [])))}
· governor {e(str(s.get('governor', 'unknown')))} · {e(str(s.get('os')))} · Python {e(str(s.get('python')))}
· fingerprint <code>{e(str(s.get('fingerprint', '')))}</code><br><small>{e(versions)}</small></p>
<p><small>report.json schema version {e(str(report.get('schema_version', 1)))} (docs/report-schema.md).</small></p>
{scripts}
</body></html>
"""
