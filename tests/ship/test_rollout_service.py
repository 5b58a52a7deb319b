"""The rollout service over HTTP: real agents through a halted and a completed rollout, each role
needing its own token, reports parsed into outcomes, and the CLI that starts, steers and serves it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ship_helpers import agent_config, publish

from edgeship.core.artifact import file_sha256
from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import AccessTokens, read_token, write_token


def _cli(*args: str) -> subprocess.CompletedProcess:
    # The CLI runs in its own process, as a user runs it (in-process runs share pytest's captured
    # streams with native libraries that earlier tests loaded).
    return subprocess.run([sys.executable, "-m", "edgeship", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def tokens(tmp_path):
    return write_token(tmp_path / "admin.token"), write_token(tmp_path / "device.token")


@pytest.mark.slow
def test_rollout_service_with_real_agents(repo, server, releases, tmp_path):
    with RolloutServer(tmp_path / "rollouts.db") as service:
        agents = [Agent(agent_config(repo, server.url, tmp_path / f"dev{i}", device_id=f"dev-{i}",
                                     rollout_url=service.url, first_runs=False)) for i in range(6)]
        for a in agents:  # no rollout yet: devices follow the channel (v1)
            assert a.run_once().kind == "updated"
        rel = publish(repo, releases["bad"], "2.0.0")
        client = RolloutClient(service.url, timeout=5)
        ro = client.start(RolloutConfig(model="tiny", target=rel["target"], from_target=rel["previous"],
                                        stages=(50, 100), min_reports=1))
        outcomes = [a.run_once().kind for a in agents]
        assert "health_check_failed" in outcomes
        assert set(outcomes) <= {"health_check_failed", "up_to_date"}
        status = client.status()
        r = next(x for x in status["rollouts"] if x["id"] == ro["id"])
        assert r["status"] == "halted" and r["percent"] == 50
        assert status["fleet"]["devices"] == 6
        failed = {d["device_id"] for d in status["devices"] if d["last_outcome"] == "health_check_failed"}
        assert len(failed) == outcomes.count("health_check_failed")  # every report was stored
        for a in agents:
            assert file_sha256(active_model(a.config.slot_dir)) == releases["v1"].sha256
        # A healthy release then goes through both stages.
        rel3 = publish(repo, releases["v3"], "3.0.0")
        ro3 = client.start(RolloutConfig(model="tiny", target=rel3["target"], from_target=rel["previous"],
                                         stages=(50, 100), min_reports=1))
        for _ in range(3):
            for a in agents:
                a.run_once()
        r3 = next(x for x in client.status()["rollouts"] if x["id"] == ro3["id"])
        assert r3["status"] == "complete"
        for a in agents:
            assert file_sha256(active_model(a.config.slot_dir)) == releases["v3"].sha256


def test_each_role_needs_its_token(tmp_path, tokens):
    admin, device = (read_token(t) for t in tokens)
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(admin=admin, device=device)) as service:
        cfg = RolloutConfig(model="m", target="models/m/2/x.onnx", from_target="models/m/1/x.onnx")
        for who in (None, device, "x" * 43):  # anonymous, a device, a forged token
            client = RolloutClient(service.url, timeout=5, token=who)
            with pytest.raises(BadInput, match="access token"):
                client.start(cfg)
            with pytest.raises(BadInput, match="access token"):
                client.status()
        started = RolloutClient(service.url, timeout=5, token=admin).start(cfg)
        for who in (None, "x" * 43):
            with pytest.raises(BadInput, match="access token"):
                RolloutClient(service.url, timeout=5, token=who).report(
                    Outcome("health_check_failed", device_id="d", target="models/m/2/x.onnx"))
        dev = RolloutClient(service.url, timeout=5, token=device)
        assert dev.assign("d", "m", "stable", "models/m/1/x.onnx")["target"] in ("models/m/2/x.onnx", None)
        with pytest.raises(BadInput, match="access token"):
            dev.action(started["id"], "halt")  # a device cannot halt a rollout
        assert RolloutClient(service.url, timeout=5, token=admin).status()["rollouts"][0]["status"] == "active"


def test_reports_are_parsed_into_outcomes(tmp_path):
    with RolloutServer(tmp_path / "r.db") as service:
        client = RolloutClient(service.url, timeout=5)
        client.assign("d-1", "m", "stable", "old", agent_version="9.9.9")  # the device checks in
        started = client.start(RolloutConfig(model="m", target="new", from_target="old", stages=(100,)))
        a = client.assign("d-1", "m", "stable", "old")
        assert a["rollout"] == started["id"] and a["target"] == "new"
        # What an agent sends, with a key a newer agent might add: the service ignores what it does not know.
        body = {**Outcome("updated", target="new", device_id="d-1", rollout=a, active_target="new").to_dict(),
                "from_the_future": 1}
        reply = client._call("POST", "/v1/reports", body=body)
        assert reply["ok"] and reply["rollout"]["status"] == "complete"
        (row,) = client.status()["devices"]
        assert (row["last_outcome"], row["active_target"], row["agent_version"]) == ("updated", "new", "9.9.9")
        with pytest.raises(BadInput, match="device_id"):
            client.report(Outcome("updated"))  # 400, one line
        with pytest.raises(BadInput, match="unknown action"):
            client.action(started["id"], "explode")
        with pytest.raises(BadInput, match="no rollout 99"):
            client.action(99, "advance")


def test_agent_with_its_device_token_follows_the_rollout(repo, server, releases, tmp_path, tokens):
    admin_file, device_file = tokens
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(read_token(admin_file),
                                                              read_token(device_file))) as service:
        agent = Agent(agent_config(repo, server.url, tmp_path / "dev", rollout_url=service.url,
                                   rollout_token_file=str(device_file), first_runs=False))
        assert agent.run_once().kind == "updated"
        rel = publish(repo, releases["v2"], "2.0.0")
        RolloutClient(service.url, token=read_token(admin_file)).start(
            RolloutConfig(model="tiny", target=rel["target"], from_target=rel["previous"], stages=(100,)))
        result = agent.run_once()
        assert result.kind == "updated" and result.rollout_id is not None and result.report_error is None
        stranger = Agent(agent_config(repo, server.url, tmp_path / "dev2", rollout_url=service.url))
        result = stranger.run_once()
        assert result.kind == "rollout_unreachable" and "access token" in result.detail


def test_rollout_cli_start_halt_status(tmp_path):
    with RolloutServer(tmp_path / "rollouts.db") as service:
        proc = _cli("ship", "rollout", "start", "--server", service.url, "--model", "m", "--target",
                    "models/m/2/x.onnx", "--from", "models/m/1/x.onnx", "--stages", "5,100", "--json")
        assert proc.returncode == 0, proc.stderr
        started = json.loads(proc.stdout)
        assert started["status"] == "active" and started["percent"] == 5
        # A fleet of one: its only device is the canary even though 5% of one device rounds to none.
        assert RolloutClient(service.url).assign("dev-1", "m", "stable", "models/m/1/x.onnx")["target"] == \
            "models/m/2/x.onnx"
        proc = _cli("ship", "rollout", "halt", str(started["id"]), "--server", service.url)
        assert proc.returncode == 0 and proc.stdout.strip() == \
            f"rollout {started['id']}: m -> models/m/2/x.onnx: halted at 5%"
        proc = _cli("ship", "status", "--server", service.url)
        assert proc.returncode == 0
        assert "1 devices" in proc.stdout and "halted at 5%" in proc.stdout
        assert _cli("ship", "rollout", "advance", "--server", service.url).returncode == 2  # no id: usage error
        assert _cli("ship", "rollout", "start", "--server", service.url, "--model", "m", "--target", "t",
                    "--stages", "10,50").returncode == 2  # the last stage must be 100


def test_cli_refuses_an_open_service_on_all_interfaces(tmp_path):
    proc = _cli("ship", "rollout-server", "--db", str(tmp_path / "r.db"), "--host", "0.0.0.0", "--port", "0")
    assert proc.returncode == 2 and "admin-token-file" in proc.stderr
    proc = _cli("ship", "rollout-token", str(tmp_path / "t"))
    assert proc.returncode == 0 and read_token(tmp_path / "t")
