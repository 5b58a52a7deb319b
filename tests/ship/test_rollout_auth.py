"""Access tokens of the rollout service: operators and devices each need their own token, nobody without
one can steer or halt a rollout, and an open service is refused on a non-loopback address."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from conftest import agent_config, publish
from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, AgentConfig
from edgeship.ship.rollout import (
    AccessTokens,
    RolloutClient,
    RolloutConfig,
    RolloutServer,
    check_exposure,
    read_token,
    write_token,
)


@pytest.fixture
def tokens(tmp_path):
    admin, device = write_token(tmp_path / "admin.token"), write_token(tmp_path / "device.token")
    return admin, device


def test_token_files_are_private_random_and_never_overwritten(tmp_path, tokens):
    admin, device = tokens
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert read_token(admin) != read_token(device) and len(read_token(admin)) >= 32
    with pytest.raises(BadInput, match="not overwritten"):
        write_token(admin)
    (tmp_path / "empty.token").write_text("\n")
    with pytest.raises(BadInput, match="no usable token"):
        read_token(tmp_path / "empty.token")
    with pytest.raises(BadInput, match="rollout-token"):
        read_token(tmp_path / "missing.token")


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
                    {"device_id": "d", "outcome": "health_check_failed", "target": "models/m/2/x.onnx"})
        dev = RolloutClient(service.url, timeout=5, token=device)
        assert dev.assign("d", "m", "stable", "models/m/1/x.onnx")["target"] in ("models/m/2/x.onnx", None)
        with pytest.raises(BadInput, match="access token"):
            dev.action(started["id"], "halt")  # a device cannot halt a rollout
        assert RolloutClient(service.url, timeout=5, token=admin).status()["rollouts"][0]["status"] == "active"


def test_agent_with_its_device_token_follows_the_rollout(repo, server, releases, tmp_path, tokens):
    admin_file, device_file = tokens
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(read_token(admin_file),
                                                              read_token(device_file))) as service:
        agent = Agent(agent_config(repo, server.url, tmp_path / "dev", rollout_url=service.url,
                                   rollout_token_file=str(device_file), first_runs=False))
        assert agent.run_once()["outcome"] == "updated"
        rel = publish(repo, releases["v2"], "2.0.0")
        RolloutClient(service.url, token=read_token(admin_file)).start(
            RolloutConfig(model="tiny", target=rel["target"], from_target=rel["previous"], stages=(100,)))
        assert agent.run_once()["outcome"] == "updated"
        stranger = Agent(agent_config(repo, server.url, tmp_path / "dev2", rollout_url=service.url))
        result = stranger.run_once()
        assert result["outcome"] == "rollout_unreachable" and "access token" in result["detail"]


def test_agent_config_checks_the_token_file(tmp_path):
    with pytest.raises(BadInput, match="rollout-token"):
        AgentConfig(rollout_url="http://127.0.0.1:1", rollout_token_file=str(tmp_path / "none"))
    with pytest.raises(BadInput, match="--rollout URL"):
        AgentConfig(rollout_token_file=str(write_token(tmp_path / "t")))


def test_open_service_is_refused_off_loopback():
    check_exposure("127.0.0.1", AccessTokens(), insecure=False)  # development: allowed
    with pytest.raises(BadInput, match="admin-token-file"):
        check_exposure("0.0.0.0", AccessTokens(admin="a" * 20), insecure=False)
    check_exposure("0.0.0.0", AccessTokens(admin="a" * 20, device="d" * 20), insecure=False)
    check_exposure("0.0.0.0", AccessTokens(), insecure=True)


def test_cli_refuses_an_open_service_on_all_interfaces(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgeship", "ship", "rollout-server", "--db", str(tmp_path / "r.db"),
                           "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "admin-token-file" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgeship", "ship", "rollout-token", str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and read_token(tmp_path / "t")
