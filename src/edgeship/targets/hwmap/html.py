"""A self-contained HTML view of a hardware map: the graph drawn as inline SVG, nodes coloured by
the unit they run on, each partition outlined, and the splits, hand-offs and problems as tables.
Nothing is fetched when it is opened (no scripts, no external styles or fonts)."""

from __future__ import annotations

import html
from collections import defaultdict

from edgeship.targets.hwmap.result import PLACED, UNPLACED, HardwareMap

PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]  # by unit, in policy order
UNPLACED_COLOUR = "#d62728"
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 118, 26, 34, 10, 24


def _layout(hw: HardwareMap) -> dict[str, tuple[float, float]]:
    """Columns by dependency depth (a node one column right of its deepest input), rows in order."""
    shown = [n for n in hw.nodes if n.status in (PLACED, UNPLACED)]
    index = {n.name: i for i, n in enumerate(shown)}
    deps = hw_deps(hw)
    depth: dict[str, int] = {}
    for n in shown:
        depth[n.name] = 1 + max((depth[d] for d in deps.get(n.name, ()) if d in depth), default=-1)
    rows: dict[int, int] = defaultdict(int)
    pos = {}
    for n in sorted(shown, key=lambda n: (depth[n.name], index[n.name])):
        col = depth[n.name]
        pos[n.name] = (PAD + col * (NODE_W + GAP_X), PAD + 20 + rows[col] * (NODE_H + GAP_Y))
        rows[col] += 1
    return pos


def hw_deps(hw: HardwareMap) -> dict[str, list[str]]:
    """Node -> the nodes it takes tensors from."""
    deps: dict[str, list[str]] = defaultdict(list)
    for src, dst in hw.edges:
        deps[dst].append(src)
    return deps


def to_svg(hw: HardwareMap) -> str:
    pos = _layout(hw)
    if not pos:
        return "<p>No node runs anywhere: nothing to draw.</p>"
    colours = {u: PALETTE[i % len(PALETTE)] for i, u in enumerate(hw.units)}
    width = max(x for x, _ in pos.values()) + NODE_W + PAD
    height = max(y for _, y in pos.values()) + NODE_H + PAD
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'role="img" aria-label="graph of {e(hw.model)} on {e(hw.target)}" font-family="sans-serif">']
    for part in hw.partitions:  # outlines first, under the nodes
        boxes = [pos[n] for n in part.nodes if n in pos]
        if not boxes:
            continue
        x0, y0 = min(b[0] for b in boxes) - 6, min(b[1] for b in boxes) - 16
        x1, y1 = max(b[0] for b in boxes) + NODE_W + 6, max(b[1] for b in boxes) + NODE_H + 6
        c = colours.get(part.unit, "#777")
        parts.append(f'<rect x="{x0:.0f}" y="{y0:.0f}" width="{x1 - x0:.0f}" height="{y1 - y0:.0f}" rx="8" '
                     f'fill="{c}" fill-opacity="0.06" stroke="{c}" stroke-dasharray="5 3"/>'
                     f'<text x="{x0 + 4:.0f}" y="{y0 + 11:.0f}" font-size="10" fill="{c}">partition {part.index} · '
                     f'{e(part.unit)} · {len(part.nodes)} nodes</text>')
    for name, srcs in hw_deps(hw).items():
        if name not in pos:
            continue
        x2, y2 = pos[name]
        for s in srcs:
            if s in pos:
                x1, y1 = pos[s]
                parts.append(f'<line x1="{x1 + NODE_W:.0f}" y1="{y1 + NODE_H / 2:.0f}" x2="{x2:.0f}" '
                             f'y2="{y2 + NODE_H / 2:.0f}" stroke="#bbb" stroke-width="1"/>')
    for n in hw.nodes:
        if n.name not in pos:
            continue
        x, y = pos[n.name]
        c = colours.get(n.unit, UNPLACED_COLOUR) if n.status == PLACED else UNPLACED_COLOUR
        tip = f"{n.name}: {n.op} v{n.version} ({n.dtype or '?'}) on {n.unit or 'no unit'}" + (
            f" — {n.why}" if n.why else "") + (f" [{' '.join(n.lowered)}]" if n.lowered else "")
        label = n.op.split(":")[-1]
        label = label if len(label) <= 16 else label[:15] + "…"
        parts.append(f'<g><title>{e(tip)}</title><rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" '
                     f'rx="4" fill="{c}" stroke="{"#000" if n.status == UNPLACED else c}"/>'
                     f'<text x="{x + NODE_W / 2:.0f}" y="{y + 17:.0f}" font-size="11" fill="#fff" '
                     f'text-anchor="middle">{e(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(hw: HardwareMap) -> str:
    e = html.escape
    s = hw.summary()
    colours = {u: PALETTE[i % len(PALETTE)] for i, u in enumerate(hw.units)}
    legend = "".join(f'<span class="chip" style="background:{c}">{e(u)}: {s["by_unit"].get(u, 0)}</span>'
                     for u, c in colours.items())
    if hw.unplaced:
        legend += f'<span class="chip" style="background:{UNPLACED_COLOUR}">no unit: {len(hw.unplaced)}</span>'
    splits = "".join(f"<tr><td>{len(x.nodes)} × {e(x.op)}</td><td>{e(x.unit or 'nowhere')}</td><td>{e(x.reason)}</td>"
                     f"<td>{e(x.suggestion)}</td></tr>" for x in hw.splits)
    bounds = "".join(f"<tr><td>#{b.src} {e(b.src_unit)} → #{b.dst} {e(b.dst_unit)}</td><td>{b.nbytes:,}</td>"
                     f"<td>{b.cost_us:.0f}</td><td>{e(', '.join(t for t, _ in b.tensors[:6]))}"
                     f"{' …' if len(b.tensors) > 6 else ''}</td></tr>" for b in hw.boundaries)
    problems = "".join(f"<li>{'✗' if p.blocking else '!'} {e(str(p))}</li>" for p in hw.problems)
    cross = ""
    if hw.crosscheck:
        c = hw.crosscheck
        rows = "".join(f"<tr><td>{e(d.node)}</td><td>{e(d.op)}</td><td>{e(d.map_says)}</td><td>{e(d.runtime_says)}</td>"
                       f"<td>{e(d.why)}</td></tr>" for d in c.disagreements)
        cross = (f"<h2>Cross-check: {e(c.runtime)}</h2><p>{c.agreed}/{c.compared} nodes agree "
                 f"({c.agreement:.1%}). {e(c.note)}</p>"
                 + (f"<table><tr><th>node</th><th>op</th><th>map</th><th>runtime</th><th>why</th></tr>{rows}</table>"
                    if rows else ""))
    splits_html = ("<table><tr><th>nodes</th><th>runs on</th><th>why</th><th>what to do</th></tr>"
                   f"{splits}</table>" if splits else "<p>None: every node runs on the first unit.</p>")
    bounds_html = ("<table><tr><th>between</th><th>bytes</th><th>~µs</th><th>tensors</th></tr>"
                   f"{bounds}</table>" if bounds else "<p>None.</p>")
    sources = "".join(f"<li><code>{e(k)}</code>: {e(v)}</li>" for k, v in hw.sources.items())
    verdict = "loads" if hw.loads else "does not load"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeship map: {e(hw.model)} on {e(hw.target)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}}
.chip{{color:#fff;padding:2px 8px;border-radius:9px;margin-right:6px}} table{{border-collapse:collapse;font-size:13px}}
th,td{{border-bottom:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}}
.graph{{overflow:auto;border:1px solid #d0d7de;max-height:80vh}} small{{color:#57606a}}
</style></head><body>
<h1>{e(hw.model)} on {e(hw.target)}</h1>
<p>Units in policy order: {e(' → '.join(hw.units))} (rules {e(', '.join(hw.rules))}). {s['nodes']} nodes,
{s['partitions']} partitions, {s['transitions']} transitions, {s['fallback_nodes']} fallback nodes; pre-flight:
<b>{verdict}</b>.</p>
<p>{legend}</p>
<div class="graph">{to_svg(hw)}</div>
<p><small>Columns are dependency depth; dashed outlines are partitions. Hover a node for its operator, version,
data type, unit and why it is not on the first unit.</small></p>
<h2>Nodes that leave the {e(hw.units[0])}</h2>
{splits_html}
<h2>Hand-offs</h2>
{bounds_html}
<p><small>Cost basis: {e(hw.link_basis)}.</small></p>
<h2>Pre-flight</h2>{"<ul>" + problems + "</ul>" if problems else "<p>No problem found.</p>"}
{cross}
<h2>Rules cited</h2><ul>{sources}</ul>
</body></html>
"""
