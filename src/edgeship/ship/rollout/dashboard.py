"""The operator's page (``GET /dashboard``) and the Prometheus endpoint (``GET /metrics``) of the
rollout service.

The page is rendered on the server from the store, with inline CSS and inline SVG charts: it
fetches nothing (no script, font or stylesheet from anywhere), so it works on a network cut off
from the internet. Sections: the fleet by model version and cohort, each rollout with its stages
and gates, telemetry over time per release, drift per input and output, and the devices that
failed with their reasons.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgeship.ship.outcome import Outcome

if TYPE_CHECKING:
    from edgeship.ship.rollout.service import IngestClock
    from edgeship.ship.rollout.store import RolloutStore

MAX_CHARTED_RELEASES = 6
MAX_LISTED_DEVICES = 50

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#fafbfc}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #dde}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:.25em .7em;border-bottom:1px solid #e4e6eb;text-align:left;
vertical-align:top}th{background:#eef1f5;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:.9em}.active{background:#dbeafe}
.complete{background:#dcfce7}.halted{background:#fee2e2;color:#991b1b;font-weight:600}.superseded{background:#eee}
.pass{color:#166534}.fail{color:#b91c1c;font-weight:600}.wait{color:#6b7280}.stage{padding:0 .4em;margin-right:.2em;
border:1px solid #cbd5e1;border-radius:.3em}.stage.now{background:#1d4ed8;color:white;border-color:#1d4ed8}
.stage.done{background:#cbd5e1}.chart{margin:.4em 1.2em .8em 0;display:inline-block;vertical-align:top}
.bar{display:inline-block;height:.8em;background:#60a5fa;vertical-align:middle}.bar.hot{background:#ef4444}
.muted{color:#6b7280}code{font-size:.92em}
"""


def version_of(target: str | None) -> str:
    """``models/NAME/VERSION/FILE`` → ``NAME VERSION`` (anything else as it is)."""
    if not target:
        return "(none)"
    parts = target.split("/")
    return f"{parts[1]} {parts[2]}" if len(parts) >= 4 and parts[0] == "models" else target


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    out = [f"<table class='{cls}'><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "".join(out) + "</table>"


def _chart(title: str, lines: dict[str, list[tuple[float, float]]], unit: str, width: int = 420,
           height: int = 150) -> str:
    """An SVG line chart of ``lines`` (name → (time, value) points) with its axis range."""
    colours = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
    points = [p for pts in lines.values() for p in pts]
    if not points:
        return ""
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y1 = max(p[1] for p in points) * 1.1 or 1.0
    pad = 30

    def xy(p: tuple[float, float]) -> str:
        x = pad + (p[0] - x0) / ((x1 - x0) or 1) * (width - pad - 10)
        y = height - pad - p[1] / y1 * (height - pad - 10)
        return f"{x:.1f},{y:.1f}"

    svg = [f"<svg class='chart' role='img' aria-label='{_e(title)}' width='{width}' height='{height + 18 * len(lines)}'"
           f" xmlns='http://www.w3.org/2000/svg'><title>{_e(title)}</title>",
           f"<text x='{pad}' y='12' font-size='12' font-weight='600'>{_e(title)}</text>",
           f"<line x1='{pad}' y1='{height - pad}' x2='{width - 10}' y2='{height - pad}' stroke='#94a3b8'/>",
           f"<line x1='{pad}' y1='10' x2='{pad}' y2='{height - pad}' stroke='#94a3b8'/>",
           f"<text x='2' y='22' font-size='10'>{y1:.3g}</text><text x='2' y='{height - pad}' font-size='10'>0</text>",
           f"<text x='{pad}' y='{height - pad + 14}' font-size='10'>{time.strftime('%H:%M:%S', time.localtime(x0))}"
           f"</text><text x='{width - 60}' y='{height - pad + 14}' font-size='10'>"
           f"{time.strftime('%H:%M:%S', time.localtime(x1))}</text>",
           f"<text x='{width - 40}' y='22' font-size='10'>{_e(unit)}</text>"]
    for i, (name, pts) in enumerate(lines.items()):
        c = colours[i % len(colours)]
        if len(pts) == 1:
            svg.append(f"<circle cx='{xy(pts[0]).split(',')[0]}' cy='{xy(pts[0]).split(',')[1]}' r='3' fill='{c}'/>")
        else:
            svg.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='{' '.join(xy(p) for p in pts)}'/>")
        svg.append(f"<text x='{pad}' y='{height + 4 + 18 * i}' font-size='11' fill='{c}'>— {_e(name)}</text>")
    return "".join(svg) + "</svg>"


def _gate_cell(v: dict[str, Any]) -> str:
    state = {True: ("pass", "pass"), False: ("fail", "FAIL"), None: ("wait", "waiting")}[v.get("passed")]
    value = "" if v.get("value") is None else f" {v['value']:.4g}"
    return (f"<span class='{state[0]}'>{_e(v['gate'])}{_e(value)} (limit {v['limit']:g}): {state[1]}</span>"
            f"<br><span class='muted'>{_e(v.get('why', ''))}</span>")


def _stages(r: dict[str, Any]) -> str:
    out = []
    for i, pct in enumerate(r["stages"]):
        cls = "now" if i == r["stage"] and r["status"] != "complete" else ("done" if i < r["stage"] or
                                                                           r["status"] == "complete" else "")
        out.append(f"<span class='stage {cls}'>{pct:g}%</span>")
    return "".join(out)


def render(store: RolloutStore) -> str:
    """The whole page."""
    s = store.status()
    rollouts, devices = s["rollouts"], s["devices"]
    live = [r for r in rollouts if r["status"] in ("active", "halted")]
    cohorts = {r["id"]: store.cohort(r) for r in live}
    body: list[str] = [f"<h1>edgeship fleet</h1><p class='muted'>{len(devices)} devices · {len(rollouts)} rollouts · "
                       f"rendered {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"]

    # -- the fleet by model version and cohort --
    groups: Counter[tuple[str, str, str]] = Counter()
    for d in devices:
        r = next((r for r in live if r["model"] == d["model"] and r["channel"] == d["channel"]), None)
        where = "-" if r is None else (f"rollout {r['id']} cohort ({r['percent']:g}%)" if d["device_id"] in
                                       cohorts[r["id"]] else f"outside rollout {r['id']}")
        groups[(d["model"] or "?", version_of(d["active_target"]), where)] += 1
    rows = [[_e(m), f"<code>{_e(v)}</code>", _e(c), f"<span class='num'>{n}</span>"]
            for (m, v, c), n in sorted(groups.items())]
    body.append("<section id='fleet'><h2>Fleet by model version and cohort</h2>"
                + _table(["model", "running", "cohort", "devices"], rows) + "</section>")

    # -- rollouts --
    parts = []
    for r in reversed(rollouts):
        st = r["stats"]
        gates = "".join(f"<div>{_gate_cell(v)}</div>" for v in r.get("gate_results") or []) or \
            "<span class='muted'>install gates only</span>"
        halt = r.get("halt") or {}
        halted = ""
        if r["status"] == "halted":
            named = ", ".join(halt.get("devices") or []) or "-"
            halted = (f"<p class='fail'>halted by gate <b class='halt-gate'>{_e(halt.get('gate', 'by hand'))}</b>: "
                      f"{_e(r.get('reason') or '')}</p><p>devices: <span class='halt-devices'>{_e(named)}</span></p>")
        events = "".join(f"<li>{time.strftime('%H:%M:%S', time.localtime(e['at']))} {_e(e['text'])}</li>"
                         for e in r["events"][-8:])
        parts.append(
            f"<div class='rollout' id='rollout-{r['id']}'><h3>rollout {r['id']}: {_e(r['model'])} "
            f"<code>{_e(version_of(r['from_target']))}</code> → <code>{_e(version_of(r['target']))}</code> "
            f"<span class='pill {_e(r['status'])}'>{_e(r['status'])}</span></h3>"
            f"<p>stages {_stages(r)} cohort {st['cohort']} of {st['known_devices']} devices · "
            f"{st['succeeded']} installed · {st['failed']} failed</p>{halted}<div>{gates}</div>"
            f"<details><summary>events</summary><ul>{events}</ul></details></div>")
    body.append("<section id='rollouts'><h2>Rollouts</h2>" + ("".join(parts) or "<p class='muted'>none</p>")
                + "</section>")

    # -- telemetry over time --
    targets = store.telemetry_targets()
    order = [r["target"] for r in reversed(rollouts)] + [r["from_target"] for r in reversed(rollouts)]
    charted = [t for t in dict.fromkeys(order + sorted(targets)) if t in targets][:MAX_CHARTED_RELEASES]
    series = {t: store.telemetry_series(t, bucket_s=10.0) for t in charted}
    rows = [[f"<code>{_e(version_of(t))}</code>", f"<span class='num'>{v['devices']}</span>",
             f"<span class='num'>{v['inferences']}</span>", f"<span class='num'>{v['errors']}</span>",
             f"<span class='num'>{v['dropped']}</span>"] for t, v in targets.items()]
    def points(key: str) -> dict[str, list[tuple[float, float]]]:
        return {version_of(t): [(p["at"], p[key]) for p in pts if p[key] is not None] for t, pts in series.items()}

    charts = [_chart("p50 latency by release", points("p50"), "ms"),
              _chart("p95 latency by release", points("p95"), "ms"),
              _chart("inferences per 10 s", {version_of(t): [(p["at"], p["inferences"]) for p in pts]
                                             for t, pts in series.items()}, "count"),
              _chart("error rate", {version_of(t): [(p["at"], p["errors"] / p["inferences"] if p["inferences"] else 0.0)
                                                    for p in pts] for t, pts in series.items()}, "fraction")]
    body.append("<section id='telemetry'><h2>Telemetry</h2>"
                + _table(["release", "devices", "inferences", "errors", "reports dropped on devices"], rows)
                + "".join(charts) + "</section>")

    # -- drift --
    parts = []
    for t in charted:
        d = store.drift(t)
        if not d["reference"]:
            parts.append(f"<p><code>{_e(version_of(t))}</code>: <span class='muted'>no reference profile</span></p>")
            continue
        rows = []
        for key, psi in sorted(d["scores"].items()):
            bar = "" if psi is None else f"<span class='bar{' hot' if psi > 0.25 else ''}' " \
                                         f"style='width:{min(psi, 1.0) * 200:.0f}px'></span> "
            rows.append([f"<code>{_e(key)}</code>", bar + ("-" if psi is None else f"{psi:.3f}")])
        worst = sorted(((v["psi"], dev, v["worst"]) for dev, v in d["devices"].items() if v["psi"] is not None),
                       reverse=True)[:5]
        top = ", ".join(f"{_e(dev)} ({psi:.2f} on {_e(k)})" for psi, dev, k in worst if psi > 0.1) or "none over 0.1"
        parts.append(f"<h3><code>{_e(version_of(t))}</code></h3>" + _table(["statistic", "PSI (all devices)"], rows)
                     + f"<p>most drifted devices: {top}</p>")
    body.append("<section id='drift'><h2>Drift against the golden data</h2>"
                + ("".join(parts) or "<p class='muted'>no telemetry yet</p>") + "</section>")

    # -- devices that failed --
    failed = [d for d in devices if (d.get("last_outcome") and Outcome(d["last_outcome"]).failed)
              or d.get("last_outcome") in ("rollback_failed",)]
    named = {dev: (r["id"], (r.get("halt") or {}).get("gate")) for r in rollouts if r["status"] == "halted"
             for dev in (r.get("halt") or {}).get("devices") or []}
    rows = [[_e(d["device_id"]), _e(d["last_outcome"]), _e(d.get("last_detail") or ""),
             f"<code>{_e(version_of(d['active_target']))}</code>"] for d in failed[:MAX_LISTED_DEVICES]]
    listed = {d["device_id"] for d in failed}
    rows += [[_e(dev), f"named by gate {_e(gate)} (rollout {rid})", "", ""]
             for dev, (rid, gate) in list(named.items())[:MAX_LISTED_DEVICES] if dev not in listed]
    body.append(f"<section id='failed'><h2>Devices that failed ({len(failed)} by install, {len(named)} named by "
                f"gates)</h2>" + (_table(["device", "outcome", "reason", "running"], rows) if rows else
                                  "<p class='muted'>none</p>") + "</section>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>edgeship fleet</title>"
            f"<meta http-equiv='refresh' content='30'><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>")


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def prometheus(store: RolloutStore, ingest: IngestClock) -> str:
    """The Prometheus text exposition format (0.0.4)."""
    s = store.status()
    out: list[str] = []

    def family(name: str, kind: str, help: str, samples: Sequence[tuple[dict[str, Any], float]]) -> None:
        out.append(f"# HELP {name} {help}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    by_target = Counter(d["active_target"] or "(none)" for d in s["devices"])
    family("edgeship_devices", "gauge", "Devices by the release they run.",
           [({"target": t}, n) for t, n in sorted(by_target.items())])
    outcomes = Counter(d["last_outcome"] for d in s["devices"] if d.get("last_outcome"))
    family("edgeship_devices_last_outcome", "gauge", "Devices by the outcome of their last update.",
           [({"outcome": k}, n) for k, n in sorted(outcomes.items())])
    statuses = ("active", "halted", "complete", "superseded")
    family("edgeship_rollout_status", "gauge", "1 for the status each rollout is in.",
           [({"rollout": r["id"], "model": r["model"], "target": r["target"], "status": st},
             1.0 if r["status"] == st else 0.0) for r in s["rollouts"] for st in statuses])
    family("edgeship_rollout_stage_percent", "gauge", "The current stage's share of the fleet.",
           [({"rollout": r["id"]}, r["percent"]) for r in s["rollouts"]])
    family("edgeship_rollout_devices", "gauge", "Devices of a rollout's current stage by their verdict.",
           [({"rollout": r["id"], "state": k}, r["stats"][k]) for r in s["rollouts"]
            for k in ("cohort", "succeeded", "failed")])
    family("edgeship_rollout_gate_value", "gauge", "A telemetry gate's last measured value.",
           [({"rollout": r["id"], "gate": v["gate"]}, v["value"]) for r in s["rollouts"]
            for v in r.get("gate_results") or [] if v.get("value") is not None])
    targets = store.telemetry_targets()
    family("edgeship_inferences_total", "counter", "Inferences devices reported, by release.",
           [({"target": t}, v["inferences"]) for t, v in targets.items()])
    family("edgeship_inference_errors_total", "counter", "Failed inferences devices reported, by release.",
           [({"target": t}, v["errors"]) for t, v in targets.items()])
    family("edgeship_telemetry_dropped_total", "counter", "Reports devices dropped from a full buffer.",
           [({"target": t}, v["dropped"]) for t, v in targets.items()])
    latest = {t: next((p for p in reversed(store.telemetry_series(t, 60.0)) if p["p50"] is not None), None)
              for t in targets}
    family("edgeship_latency_ms", "gauge", "Inference-weighted p50/p95 latency of the last minute with reports.",
           [({"target": t, "quantile": q}, p[k]) for t, p in latest.items() if p for q, k in (("0.5", "p50"),
                                                                                            ("0.95", "p95"))])
    drift = [(t, k, v) for t in targets for k, v in store.drift(t)["scores"].items() if v is not None]
    family("edgeship_drift_psi", "gauge", "Population stability index against the golden data, all devices.",
           [({"target": t, "statistic": k}, v) for t, k, v in drift])
    out.append("# HELP edgeship_ingest_seconds Time to handle a telemetry request.")
    out.append("# TYPE edgeship_ingest_seconds histogram")
    running = 0
    for bound, n in zip(ingest.BOUNDS, ingest.counts, strict=False):
        running += n
        out.append(f'edgeship_ingest_seconds_bucket{{le="{bound:g}"}} {running}')
    out.append(f'edgeship_ingest_seconds_bucket{{le="+Inf"}} {sum(ingest.counts)}')
    out.append(f"edgeship_ingest_seconds_sum {ingest.total_s:.6f}")
    out.append(f"edgeship_ingest_seconds_count {ingest.requests}")
    family("edgeship_telemetry_reports_total", "counter", "Telemetry reports received.", [({}, ingest.reports)])
    return "\n".join(out) + "\n"
