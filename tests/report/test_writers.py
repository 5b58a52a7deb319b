import json
import re

from edgeship.report.writers import plot_svg, write_reports


def _report():
    def row(vid, p50, cos, passed, chosen=False):
        return {"id": vid, "variant": vid.split("@")[0], "target": "onnxruntime-cpu", "precision": "fp32",
                "path": f"{vid}.onnx", "size_bytes": 1000, "size_ratio": 1.0,
                "metrics": {"cosine_mean": cos, "cosine_min": cos},
                "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2},
                "gate": {"passed": passed, "why": "x"}, "status": "pass" if passed else "fail", "chosen": chosen}

    return {"model": "zoo:m", "task": "embedding", "data": {"eval": "data:e", "calib": None, "samples": 3, "rows": 3},
            "gates": ["cosine_min>=0.98"], "bench": {"batch": 1, "seq": 32}, "baseline": None,
            "variants": [row("fp32@onnxruntime", 2.0, 1.0, True), row("int8@onnxruntime", 1.0, 0.99, True, True),
                         row("bad@onnxruntime", 0.5, 0.5, False)], "system": {}}


def test_three_reports_are_written_and_self_contained(tmp_path):
    paths = write_reports(_report(), tmp_path)
    assert json.loads(paths["json"].read_text())["variants"][1]["chosen"] is True
    md = paths["md"].read_text()
    assert "| int8 |" in md and "★" in md
    page = paths["html"].read_text()
    assert "<svg" in page and not re.search(r"(src|href)=\"https?:", page)  # nothing fetched from the network


def test_plot_places_faster_points_left():
    svg = plot_svg(_report())
    xs = [float(x) for x in re.findall(r'<circle cx="([0-9.]+)"', svg)]
    assert len(xs) == 3 and xs[2] < xs[1] < xs[0]  # 0.5 ms < 1 ms < 2 ms
