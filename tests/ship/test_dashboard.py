"""The operator's page and the Prometheus endpoint after a simulated rollout that a latency regression
halts: headless Chromium (Debian's) loads /dashboard with the operator's token, takes a screenshot,
and the page shows the fleet by version and cohort, the halted rollout with its gate and devices,
telemetry charts, drift per input and the devices that failed; it fetches nothing else."""

from __future__ import annotations

import re

import pytest
from telemetry_fakes import aggregate, golden_profile, report

from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.config import RolloutConfig, TelemetryGates
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import AccessTokens

ADMIN, DEVICE = "a" * 32, "d" * 32
OLD, NEW = "models/cam/1.0.0/model.onnx", "models/cam/2.0.0/model.onnx"
CHROMIUM = "/usr/bin/chromium"


def simulate_halted_rollout(url: str, devices: int = 40) -> dict:
    """A fleet on OLD sending telemetry; a rollout of NEW whose canary is 40% slower, one canary
    device fails its health check, one device's inputs drifted."""
    ops, dev = RolloutClient(url, token=ADMIN), RolloutClient(url, token=DEVICE)
    ids = [f"cam-{i:03d}" for i in range(devices)]
    for i, d in enumerate(ids):
        dev.assign(d, "cam", "stable", OLD)
        dev.telemetry([report(d, aggregate(OLD, latency_ms=4.0, seed=i, start=1000.0 + i))])
    ops.put_profile(NEW, golden_profile())
    ops.put_profile(OLD, golden_profile())
    r = ops.start(RolloutConfig(model="cam", target=NEW, from_target=OLD, stages=(20, 50, 100), min_reports=2,
                                failure_threshold=0.5,
                                gates=TelemetryGates(max_latency_regression=0.2, max_drift=0.5)))
    canary = [d for d in ids if dev.assign(d, "cam", "stable", OLD)["target"] == NEW]
    broken, serving = canary[0], canary[1:]
    dev.report(Outcome("health_check_failed", device_id=broken, target=NEW, active_target=OLD,
                       detail="cosine_min=0.91 fails >=0.99", rollout={"rollout": r["id"]}))
    for i, d in enumerate(serving):
        dev.report(Outcome("updated", device_id=d, target=NEW, active_target=NEW, rollout={"rollout": r["id"]}))
        dev.telemetry([report(d, aggregate(NEW, latency_ms=5.6, seed=100 + i, shift=1.5 if i == 0 else 0.0,
                                           start=1030.0 + i))])
    dev.report(Outcome("up_to_date", device_id=serving[-1], target=NEW, active_target=NEW,
                       rollout={"rollout": r["id"]}))  # evaluates the stage now
    return {"rollout": ops.status()["rollouts"][0], "canary": canary, "drifted": serving[0]}


@pytest.fixture
def service(tmp_path):
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(ADMIN, DEVICE)) as s:
        yield s


@pytest.mark.slow
def test_the_dashboard_in_headless_chromium(service, tmp_path):
    from playwright.sync_api import sync_playwright

    sim = simulate_halted_rollout(service.url)
    r = sim["rollout"]
    assert r["status"] == "halted" and r["halt"]["gate"] == "latency_regression", r
    requested: list[str] = []
    shot = tmp_path / "dashboard.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900},
                                    extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
            page.on("request", lambda req: requested.append(req.url))
            reply = page.goto(service.url + "/dashboard")
            assert reply is not None and reply.status == 200
            page.screenshot(path=str(shot), full_page=True)
            fleet = page.inner_text("#fleet")
            rollouts = page.inner_text("#rollouts")
            telemetry = page.inner_text("#telemetry")
            drift = page.inner_text("#drift")
            failed = page.inner_text("#failed")
            charts = page.locator("svg.chart").count()
            lines = page.locator("svg.chart polyline").count() + page.locator("svg.chart circle").count()
            gate = page.inner_text(".rollout .halt-gate")
            named = page.inner_text(".rollout .halt-devices")
            anonymous = browser.new_page().goto(service.url + "/dashboard")
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert requested == [service.url + "/dashboard"]  # nothing fetched from anywhere else
    assert anonymous is not None and anonymous.status == 401
    # the fleet by version and cohort
    assert "cam 1.0.0" in fleet and "cam 2.0.0" in fleet and f"rollout {r['id']} cohort (20%)" in fleet
    assert f"outside rollout {r['id']}" in fleet
    # the rollout, its stages and gates
    assert "halted" in rollouts and "20%" in rollouts and "50%" in rollouts
    assert gate == "latency_regression" and "latency_regression 0.3" in rollouts and "FAIL" in rollouts
    assert re.search(r"p50 latency \+(3[5-9]|4[0-5])\.\d% against the previous release", rollouts)
    # the gate judged as soon as min_reports (2) canary devices had telemetry on both releases
    assert set(named.split(", ")) <= set(sim["canary"][1:]) and len(named.split(", ")) >= 2
    # telemetry over time: four charts, with lines for both releases
    assert charts == 4 and lines >= 8 and "cam 2.0.0" in telemetry
    # drift per input and output, and the device whose inputs moved
    assert "inputs.x.value" in drift and "outputs.logits.confidence" in drift and sim["drifted"] in drift
    # the device that failed, with its reason
    assert sim["canary"][0] in failed and "cosine_min=0.91" in failed


def test_prometheus_metrics(service):
    simulate_halted_rollout(service.url, devices=20)
    import urllib3

    assert urllib3.request("GET", service.url + "/metrics").status == 401
    reply = urllib3.request("GET", service.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = reply.data.decode()
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$|^[a-z_]+\{[^}]*\} (\+Inf|NaN)$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert re.search(rf'^edgeship_devices\{{target="{re.escape(OLD)}"\}} \d+$', text, re.M)
    assert re.search(r'^edgeship_rollout_status\{rollout="1",model="cam",target="[^"]+",status="halted"\} 1$', text,
                     re.M)
    assert re.search(r'^edgeship_rollout_gate_value\{rollout="1",gate="latency_regression"\} 0\.[34]', text, re.M)
    assert re.search(rf'^edgeship_inferences_total\{{target="{re.escape(NEW)}"\}} \d+$', text, re.M)
    assert re.search(r'^edgeship_drift_psi\{target="[^"]+",statistic="inputs\.x\.value"\} ', text, re.M)
    assert re.search(r'^edgeship_ingest_seconds_count [1-9]\d*$', text, re.M)
