"""A small fleet through the full scenario (the 1,000-device run is benchmarks/fleet_simulation.py),
and the demo's publish-and-update step."""

from __future__ import annotations

import json
import shutil

import pytest
from ship_demo import publish_and_update

from edgeship.core.artifact import file_sha256
from fleet_simulation import passed, simulate


@pytest.mark.slow
def test_small_fleet_rolls_out_a_healthy_release_and_halts_a_slow_one(tmp_path, postgres):
    lines: list[str] = []
    r = simulate(tmp_path / "fleet", devices=16, fault_rate=0.25, stages=(25, 50, 100), poll_s=1.0, telemetry_s=2.0,
                 per_report=10, timeout_s=240, workers=2, db=postgres.new_database(), healthy_rollout=True,
                 min_reports=2, say=lines.append)
    assert r["without_working_model"] == 0, r["broken"]
    assert sum(r["working_model"].values()) == 16
    assert r["v2_rollout"]["status"] == "complete", r["v2_rollout"]
    slow = r["regressing_rollout"]
    assert passed(r), slow
    assert slow["status"] == "halted" and slow["halted_at_stage"] == 0 and slow["gate"] == "latency_regression"
    assert 0.2 < slow["value"] < 0.45 and slow["devices_named"]
    assert r["working_model"].get("v2", 0) == 16  # the slow release stayed nowhere
    injected = r["faults"]["injected"]
    assert injected.get("network-drop", 0) > 0 and injected.get("crash", 0) > 0
    assert r["telemetry"]["drifted_devices_found"] == r["telemetry"]["drifted_devices_injected"]
    assert any("halted" in line for line in lines)


def test_demo_publishes_chosen_models_and_updates_a_device(tmp_path, releases):
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    shutil.copy(releases["v1"].model, run / "fp32.onnx")
    shutil.copy(releases["v1"].golden, run / "golden.npz")
    (run / "report.json").write_text(json.dumps({
        "model": "zoo:tiny", "golden": "golden.npz", "gates": ["cosine_min>=0.999"],
        "variants": [{"id": "fp32@onnxruntime", "target": "onnxruntime-cpu", "precision": "fp32",
                      "path": "fp32.onnx", "latency_ms": {"p50": 0.02, "p90": 0.03, "p99": 0.05},
                      "gate": {"passed": True, "why": "ok", "gates": ["rel_err_max<=1e-05"]}, "chosen": True}]}))
    empty = tmp_path / "runs" / "nothing"
    empty.mkdir()
    lines: list[str] = []
    summary = publish_and_update([run, empty], tmp_path / "ship", say=lines.append)
    assert summary["update"]["outcome"] == "updated", summary["update"]
    assert summary["active"]["sha256"] == releases["v1"].sha256
    assert file_sha256(tmp_path / "ship" / "device" / summary["active"]["path"]) == releases["v1"].sha256
    assert len(summary["skipped"]) == 1 and "report.json" in summary["skipped"][0]
    assert summary["seconds"] < 30
    assert 3 <= len(lines) <= 6  # concise
