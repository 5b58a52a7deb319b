"""The HTML report in a real browser: Debian's Chromium, headless, with a fresh profile, driven by
Playwright (its own browser download is not used). A screenshot, and what a person would see: every
target's section, the variant to ship, the plots' points, no console errors, nothing fetched."""

from __future__ import annotations

import shutil

import pytest

from edgeship.report.summary import recommend
from edgeship.report.writers import write_reports

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _report() -> dict:
    from report.test_writers import _report as base

    report = base()
    report["variants"][1]["hardware_map"] = {"nnapi": {
        "summary": {"partitions": 2, "fallback_nodes": 1, "loads": True},
        "splits": [{"count": 1, "op": "HardSwish", "unit": "CPU"}]}}
    report["recommendation"] = recommend(report)
    return report


def test_report_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra pins playwright")
    report = _report()
    page_path = write_reports(report, tmp_path)["html"]
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,  # a fresh profile
            args=["--no-sandbox", "--disable-gpu"], viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-plots-drawn]", timeout=30_000)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            assert page.get_attribute("body", "data-plots-drawn") == "4"  # 2 targets × (Pareto, latency)
            sections = page.eval_on_selector_all("section.target", "els => els.map(e => e.dataset.target)")
            assert sections == ["onnxruntime-cpu", "openvino-cpu"]
            ship = page.eval_on_selector_all("#summary li", "els => els.map(e => [e.dataset.target, e.dataset.ship])")
            assert ship == [["onnxruntime-cpu", "int8@onnxruntime"], ["openvino-cpu", "fp32@openvino"]]
            assert page.inner_text("#target-onnxruntime-cpu .ship").startswith("Ship int8")
            # the Pareto plot's points as drawn: one marker per variant on the target
            drawn = page.eval_on_selector_all("#pareto-onnxruntime-cpu .scatterlayer .trace .points path.point",
                                              "els => els.length")
            assert drawn == 3
            xs = page.evaluate("() => document.getElementById('pareto-onnxruntime-cpu').data"
                               ".filter(t => t.mode === 'markers').map(t => t.x[0])")
            assert sorted(xs) == [0.5, 1.0, 2.0]
            assert page.eval_on_selector_all("#latency-onnxruntime-cpu .boxlayer .trace", "els => els.length") == 3
            assert "nnapi: 2 partition(s)" in page.inner_text("#target-onnxruntime-cpu")
            assert "Hardware map" in page.inner_text("body")
        finally:
            context.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert (tmp_path / "report.png").stat().st_size > 10_000
