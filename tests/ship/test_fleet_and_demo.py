"""A small fleet through the full scenario (the 200-device run is benchmarks/fleet_simulation.py),
and the demo's publish-and-update step."""

from __future__ import annotations

import json
import shutil

import pytest
from ship_demo import publish_and_update

from edgeship.core.artifact import file_sha256
from fleet_simulation import simulate


@pytest.mark.slow
def test_small_fleet_rollout_with_faults_and_a_bad_release(tmp_path):
    lines: list[str] = []
    r = simulate(tmp_path / "fleet", devices=16, fault_rate=0.2, poll_s=1.0, timeout_s=150, workers=2,
                 say=lines.append)
    assert r["without_working_model"] == 0, r["broken"]
    assert sum(r["working_model"].values()) == 16
    assert r["v2_rollout"]["status"] == "complete"
    assert r["v3_rollout"]["status"] == "halted" and r["v3_rollout"]["failed"] >= 1
    assert r["v3_rollout"]["halted_at_percent"] < 100
    assert r["working_model"].get("v2", 0) == 16  # v3 never stayed anywhere
    injected = r["faults"]["injected"]
    assert injected.get("network-drop", 0) > 0 and injected.get("crash", 0) > 0
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
