import json
import re

import pytest

from edgeship.report.figures import latency_figure, pareto_figure, plotly_js
from edgeship.report.schema import SCHEMA_VERSION, schema
from edgeship.report.summary import pareto_front, recommend
from edgeship.report.writers import to_markdown, write_reports


def _row(vid, p50, cos, passed, chosen=False, target="onnxruntime-cpu", size=1000):
    return {"id": vid, "variant": vid.split("@")[0], "target": target, "precision": "fp32",
            "path": f"{vid}.onnx", "size_bytes": size, "size_ratio": size / 1000,
            "metrics": {"cosine_mean": cos, "cosine_min": cos},
            "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2},
            "latency_stats": {"ci_rel": 0.01, "cv": 0.1, "converged": True, "stop": "target",
                              "outlier_fraction": 0.0, "repetitions": 100},
            "latency_quantiles_ms": [p50 * (0.9 + 0.3 * i / 100) for i in range(101)],
            "gate": {"passed": passed, "why": "x", "gates": ["cosine_min>=0.98"]},
            "status": "pass" if passed else "fail", "chosen": chosen}


def _report():
    return {"schema_version": SCHEMA_VERSION, "model": "zoo:m", "task": "embedding", "run_dir": "runs/m",
            "created": "2026-01-01T00:00:00Z", "edgeship": "0.1.0",
            "data": {"eval": "data:e", "calib": None, "samples": 3, "rows": 3}, "gates": ["cosine_min>=0.98"],
            "bench": {"batch": 1, "seq": 32}, "baseline": None, "skipped": [], "steps": {"ran": [], "reused": []},
            "variants": [_row("fp32@onnxruntime", 2.0, 1.0, True),
                         _row("int8@onnxruntime", 1.0, 0.99, True, True, size=300),
                         _row("bad@onnxruntime", 0.5, 0.5, False),
                         _row("fp32@openvino", 1.5, 1.0, True, True, target="openvino-cpu")],
            "system": {"cpu": "x", "fingerprint": "abc"}}


def test_three_reports_are_written_and_self_contained(tmp_path):
    report = _report()
    report["recommendation"] = recommend(report)
    paths = write_reports(report, tmp_path)
    assert json.loads(paths["json"].read_text())["variants"][1]["chosen"] is True
    md = paths["md"].read_text()
    assert "| int8 |" in md and "★" in md and "## What to ship" in md
    assert "**onnxruntime-cpu**: ship `int8`" in md and "## openvino-cpu" in md
    page = paths["html"].read_text()
    # nothing fetched: no external script, style or image; Plotly's code is inline
    outside_scripts = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"(src|href)=\"https?:", outside_scripts) and "<script src" not in page
    assert "<link" not in page and (plotly_js() or "") in page
    assert 'id="pareto-onnxruntime-cpu"' in page and 'id="latency-openvino-cpu"' in page


def test_pareto_plot_puts_each_variant_at_its_latency_and_accuracy():
    fig = pareto_figure(_report(), "onnxruntime-cpu")
    points = {t["meta"]["id"]: (t["x"][0], t["y"][0], t["marker"]["size"][0], t["marker"]["symbol"])
              for t in fig["data"] if t.get("mode") == "markers"}
    assert set(points) == {"fp32@onnxruntime", "int8@onnxruntime", "bad@onnxruntime"}
    assert points["bad@onnxruntime"][0] < points["int8@onnxruntime"][0] < points["fp32@onnxruntime"][0]
    assert points["int8@onnxruntime"][3] == "star" and points["bad@onnxruntime"][3] == "circle-open"
    assert points["int8@onnxruntime"][2] < points["fp32@onnxruntime"][2]  # a smaller file, a smaller marker
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    assert front["x"] == [1.0, 2.0]  # the passing variants, each better than the other on one axis
    assert pareto_front(_report()["variants"], "cosine_min")[0] == "bad@onnxruntime"
    assert pareto_figure(_report(), "nowhere") is None


def test_latency_distribution_from_the_recorded_percentiles():
    fig = latency_figure(_report(), "onnxruntime-cpu")
    box = next(t for t in fig["data"] if t["meta"]["id"] == "int8@onnxruntime")
    assert box["median"] == [pytest.approx(1.0 * (0.9 + 0.15))] and box["q1"][0] < box["median"][0] < box["q3"][0]


def test_recommendation_names_the_variant_and_why():
    rec = recommend(_report())
    assert rec["onnxruntime-cpu"]["ship"] == "int8@onnxruntime"
    why = rec["onnxruntime-cpu"]["why"]
    assert "fastest of the 2 variant(s) that pass" in why and "±1.0%" in why and "cosine_min>=0.98 (0.99)" in why
    none = _report()
    for r in none["variants"]:
        r["chosen"], r["gate"]["passed"], r["status"] = False, False, "fail"
    assert recommend(none)["openvino-cpu"]["ship"] is None
    assert "no variant passes" in recommend(none)["openvino-cpu"]["why"]
    assert "nothing to ship" in to_markdown({**none, "recommendation": recommend(none)})


def test_report_matches_its_json_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="the dev extra pins jsonschema")
    report = _report()
    report["recommendation"] = recommend(report)
    jsonschema.validate(report, schema())
    bad = {**report, "variants": [{**report["variants"][0], "status": "maybe"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
