"""The device agent against a real repository served on loopback: updates, A/B slots, health checks,
rollback, compatibility, the slot lock, key rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ship_helpers import agent_config, publish

from edgeship.core.artifact import file_sha256
from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, AgentConfig, active_model, record_crash
from edgeship.ship.outcome import KINDS, Outcome
from edgeship.ship.publish import release_metadata
from edgeship.ship.rollout.tokens import write_token
from edgeship.ship.slots import SlotDir


def _serve_output(model: Path) -> np.ndarray:
    """What a serving process gets from the active model (a real ORT session)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.ones((1, 16), np.float32)})[0]


def test_first_update_installs_v1_and_serving_reads_the_pointer(device, releases):
    slot = Path(device.config.slot_dir)
    model = active_model(slot)
    assert file_sha256(model) == releases["v1"].sha256
    np.testing.assert_allclose(_serve_output(model), _serve_output(releases["v1"].model))
    status = SlotDir(slot).status()
    assert status["active"]["version"] == "1.0.0" and status["previous"] is None
    assert device.run_once().kind == "up_to_date"


def test_update_to_v2_keeps_previous_slot(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    result = device.run_once()
    assert result.kind == "updated" and result.version == "2.0.0"
    assert result.active_version == "2.0.0" and result.device_id == "dev-1" and result.seconds > 0
    sd = SlotDir(device.config.slot_dir)
    assert sd.state()["last_update"] == result.to_dict()  # the state file holds the same outcome
    assert Outcome.from_dict(sd.state()["last_update"]) == result
    ptr = sd.pointer()
    assert ptr["active"]["sha256"] == releases["v2"].sha256
    assert ptr["previous"]["sha256"] == releases["v1"].sha256
    assert ptr["active"]["slot"] != ptr["previous"]["slot"]
    assert sd.slot_intact(ptr["previous"]["slot"])
    assert file_sha256(active_model(sd.path)) == releases["v2"].sha256


def test_agent_status_cli_json(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    device.run_once()
    proc = subprocess.run([sys.executable, "-m", "edgeship", "agent", "status", "--slot-dir",
                           device.config.slot_dir, "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["active"]["version"] == "2.0.0" and s["active"]["sha256"] == releases["v2"].sha256
    assert s["previous"]["version"] == "1.0.0"
    assert s["last_update"]["outcome"] == "updated"


def test_health_check_failure_keeps_old_model(device, repo, releases):
    publish(repo, releases["bad"], "2.0.0")
    result = device.run_once()
    assert result.kind == "health_check_failed", result
    assert "cosine_min" in result.detail
    assert file_sha256(active_model(device.config.slot_dir)) == releases["v1"].sha256
    # The failed release is remembered: the next cycle does not download it again.
    again = device.run_once()
    assert again.kind == "up_to_date" and again.skipped


def test_truncated_model_is_rejected(device, repo, releases):
    with pytest.raises(BadInput, match="not a readable ONNX"):
        publish(repo, releases["truncated"], "2.0.0")  # the publisher refuses it...
    # ...and a device refuses one that got signed anyway (a broken build signed by a valid key).
    custom = release_metadata(releases["v2"].model, "tiny", "2.0.0", "models/tiny/2.0.0/golden.npz",
                              "onnxruntime-cpu", "fp32", ["cosine_min>=0.999"], 200.0, "0.1.0")
    repo.add_targets({"models/tiny/2.0.0/model.onnx": (releases["truncated"].model, custom),
                      "models/tiny/2.0.0/golden.npz": (releases["truncated"].golden, None)},
                     {"stable": {"tiny": "models/tiny/2.0.0/model.onnx"}})
    result = device.run_once()
    assert result.kind == "health_check_failed"
    assert "ONNX" in result.detail
    assert file_sha256(active_model(device.config.slot_dir)) == releases["v1"].sha256


def test_latency_budget_is_enforced(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0", latency_budget_ms=0.001)
    result = device.run_once()
    assert result.kind == "health_check_failed" and "latency" in result.detail


def test_model_for_another_runtime_is_rejected_before_download(device, repo, releases, server):
    publish(repo, releases["v2"], "2.0.0", runtime="tflite-cpu")
    server.requests.clear()
    result = device.run_once()
    assert result.kind == "incompatible" and "tflite-cpu" in result.detail
    assert not any(releases["v2"].sha256 in r for r in server.requests), server.requests
    assert file_sha256(active_model(device.config.slot_dir)) == releases["v1"].sha256


def test_newer_agent_required_is_rejected(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0", min_agent_version="99.0")
    result = device.run_once()
    assert result.kind == "incompatible" and "99.0" in result.detail


def test_crash_in_first_inferences_rolls_back(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    assert device.run_once().kind == "updated"
    sd = SlotDir(device.config.slot_dir)
    assert sd.active()["probation"] is True
    record_crash(sd.path, "segfault in the serving process")  # what a serving process reports
    result = device.run_once()
    assert result.kind == "rolled_back", result
    assert file_sha256(active_model(sd.path)) == releases["v1"].sha256
    assert releases["v2"].sha256 in sd.state()["failed"]
    assert device.run_once().kind == "up_to_date"  # not reinstalled


def test_probation_ends_after_clean_cycles(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    device.run_once()
    for _ in range(device.config.probation_cycles):
        device.run_once()
    assert SlotDir(device.config.slot_dir).active()["probation"] is False


def test_two_agents_cannot_share_a_slot_dir(device):
    sd = SlotDir(device.config.slot_dir)
    with sd.lock(), pytest.raises(BadInput, match="another agent"):
        device.run_once()


def test_agent_follows_key_rotation(device, repo, releases):
    repo.rotate_key("targets")
    repo.rotate_key("root")
    repo.rotate_key("timestamp")
    publish(repo, releases["v2"], "2.0.0")
    assert device.run_once().kind == "updated"
    trusted = json.loads((Path(device.config.slot_dir) / "metadata" / "root.json").read_text())
    assert trusted["signed"]["version"] == repo.current_version("root") == 4  # v1 + three rotations


def test_new_device_with_wrong_root_cannot_bootstrap(repo, server, tmp_path):
    other = tmp_path / "other-root.json"
    from edgeship.ship.repository import init_repo

    foreign = init_repo(tmp_path / "foreign")
    other.write_bytes(foreign.root_bytes())
    agent = Agent(agent_config(repo, server.url, tmp_path / "dev", root=str(other)))
    result = agent.run_once()
    assert result.kind == "metadata_rejected"
    with pytest.raises(BadInput):
        active_model(tmp_path / "dev")


def test_unreachable_rollout_service_keeps_the_model(device, repo, releases):
    cfg = device.config.replace(rollout_url="http://127.0.0.1:9")  # nothing listens on port 9
    publish(repo, releases["v2"], "2.0.0")
    result = Agent(cfg).run_once()
    assert result.kind == "rollout_unreachable" and result.transient
    assert result.kind in KINDS and not result.failed  # not counted against the release
    assert file_sha256(active_model(cfg.slot_dir)) == releases["v1"].sha256


def test_agent_config_checks_the_token_file(tmp_path):
    with pytest.raises(BadInput, match="rollout-token"):
        AgentConfig(rollout_url="http://127.0.0.1:1", rollout_token_file=str(tmp_path / "none"))
    with pytest.raises(BadInput, match="--rollout URL"):
        AgentConfig(rollout_token_file=str(write_token(tmp_path / "t")))


def test_agent_status_cli_text(device, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgeship", "agent", "status", "--slot-dir", device.config.slot_dir],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("active   tiny 1.0.0 (slot a") and lines[1] == "previous none"
    assert lines[2].startswith("last     updated: models/tiny/1.0.0/model.onnx (") and "active 1.0.0)" in lines[2]
    proc = subprocess.run([sys.executable, "-m", "edgeship", "agent", "status", "--slot-dir", str(tmp_path / "no")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
