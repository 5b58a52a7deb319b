"""Attacks and broken networks from TUF's threat model, each against a real loopback server and the
real agent: the device never installs what the repository did not sign, never goes back to older
metadata, and keeps serving the model it had."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from ship_faults import fault_server
from ship_helpers import agent_config, publish

from edgeship.core.artifact import file_sha256
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.repository import RepoConfig, _write_metadata, init_repo
from edgeship.ship.serve import StaticServer


def _agent_at(device: Agent, url: str, **kw: object) -> Agent:
    """The same device (same slot dir and trusted metadata) talking to another server."""
    from edgeship.ship.agent import AgentConfig

    return Agent(AgentConfig.from_dict({**device.config.to_dict(), "repo_url": url, **kw}))


def _assert_serves(device: Agent, sha: str) -> None:
    assert file_sha256(active_model(device.config.slot_dir)) == sha


def test_tampered_model_bytes_are_rejected(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    with fault_server(repo.path / "public", "tamper", "/targets/models/tiny/2.0.0/") as evil:
        result = _agent_at(device, evil.url).run_once()
    assert result.kind == "rejected" and "does not match" in result.detail, result
    _assert_serves(device, releases["v1"].sha256)
    assert not list((Path(device.config.slot_dir) / "downloads").glob("*.part"))


def test_replayed_older_metadata_is_rejected(device, repo, releases, tmp_path):
    old = shutil.copytree(repo.path / "public", tmp_path / "old-public")
    publish(repo, releases["v2"], "2.0.0")
    assert device.run_once().kind == "updated"
    with StaticServer(old) as attacker:  # yesterday's repository: valid signatures, older versions
        result = _agent_at(device, attacker.url).run_once()
    assert result.kind == "metadata_rejected" and "version" in result.detail.lower(), result
    _assert_serves(device, releases["v2"].sha256)


def test_expired_timestamp_freeze_is_detected(tmp_path, releases):
    repo = init_repo(tmp_path / "repo", RepoConfig(timestamp_expiry_days=3 / 86400))  # valid for 3 s
    publish(repo, releases["v1"], "1.0.0")
    with StaticServer(repo.path / "public") as frozen:
        agent = Agent(agent_config(repo, frozen.url, tmp_path / "dev"))
        assert agent.run_once().kind == "updated"
        time.sleep(3.5)  # the server keeps serving the same (now expired) timestamp: a freeze attack
        result = agent.run_once()
        assert result.kind == "metadata_rejected" and "expired" in result.detail.lower(), result
        _assert_serves(agent, releases["v1"].sha256)
        repo.refresh()  # what `edgeship ship refresh` (cron) does
        assert agent.run_once().kind == "up_to_date"


def test_mix_and_match_metadata_is_rejected(device, repo, releases, tmp_path):
    old_version = repo.current_version("targets")
    old_targets = (repo.metadata_dir / f"{old_version}.targets.json").read_bytes()
    publish(repo, releases["bad"], "2.0.0")
    evil = shutil.copytree(repo.path / "public", tmp_path / "evil")
    # New snapshot/timestamp, but the targets file they name replaced by an older signed one.
    (evil / "metadata" / f"{repo.current_version('targets')}.targets.json").write_bytes(old_targets)
    with StaticServer(evil) as attacker:
        result = _agent_at(device, attacker.url).run_once()
    assert result.kind == "metadata_rejected" and "version" in result.detail.lower(), result
    _assert_serves(device, releases["v1"].sha256)


def test_signature_threshold_not_met_is_rejected(tmp_path, releases):
    repo = init_repo(tmp_path / "repo", RepoConfig(targets_threshold=2))
    publish(repo, releases["v1"], "1.0.0")
    with StaticServer(repo.path / "public") as server:
        agent = Agent(agent_config(repo, server.url, tmp_path / "dev"))
        assert agent.run_once().kind == "updated"  # two of two signatures: accepted
        publish(repo, releases["v2"], "2.0.0")
        md = repo.load("targets")
        md.signatures.pop(next(iter(md.signatures)))  # one key's signature only
        _write_metadata(repo.metadata_dir, "targets", md)
        result = agent.run_once()
    assert result.kind == "metadata_rejected" and "UnsignedMetadataError" in result.detail, result
    _assert_serves(agent, releases["v1"].sha256)


def test_revoked_key_cannot_sign(device, repo, releases):
    old_keyid = repo.load("root").signed.roles["targets"].keyids[0]
    stolen = repo.keys.signer(old_keyid)  # the attacker kept a copy of the old targets key
    repo.rotate_key("targets")
    publish(repo, releases["v3"], "3.0.0")
    assert device.run_once().kind == "updated"  # the device now trusts root v2
    # The attacker signs new targets metadata with the revoked key (online snapshot/timestamp keys
    # also compromised, so the rest of the chain is valid).
    md = repo.load("targets")
    md.signed.targets["models/tiny/3.0.0/model.onnx"] = repo.load("targets").signed.targets[
        "models/tiny/3.0.0/model.onnx"]
    md.signed.version += 1
    md.signatures.clear()
    md.sign(stolen)
    _write_metadata(repo.metadata_dir, "targets", md)
    repo.snapshot_and_timestamp()
    result = device.run_once()
    assert result.kind == "metadata_rejected" and "UnsignedMetadataError" in result.detail, result
    _assert_serves(device, releases["v3"].sha256)


def test_endless_data_is_cut_at_the_signed_length(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    with fault_server(repo.path / "public", "endless", "/targets/models/tiny/2.0.0/") as evil:
        t0 = time.monotonic()
        result = _agent_at(device, evil.url).run_once()
        elapsed = time.monotonic() - t0
    assert result.kind == "rejected" and "bytes" in result.detail, result
    assert elapsed < 10
    _assert_serves(device, releases["v1"].sha256)


def test_endless_metadata_is_cut(device, repo):
    with fault_server(repo.path / "public", "endless", "/metadata/timestamp.json") as evil:
        result = _agent_at(device, evil.url).run_once()
    assert result.kind == "download_failed" and result.transient, result


def test_slow_retrieval_hits_the_deadline(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    with fault_server(repo.path / "public", "slow", "/targets/models/tiny/2.0.0/") as evil:
        t0 = time.monotonic()
        result = _agent_at(device, evil.url, deadline_s=2.0).run_once()
        elapsed = time.monotonic() - t0
        evil.httpd.stopping = True  # type: ignore[attr-defined]
    assert result.kind == "download_failed" and "deadline" in result.detail, result
    assert elapsed < 6
    _assert_serves(device, releases["v1"].sha256)


def test_dropped_connection_resumes_with_a_range_request(device, repo, releases):
    publish(repo, releases["v2"], "2.0.0")
    with fault_server(repo.path / "public", "drop", f"/{releases['v2'].sha256}.model.onnx") as flaky:
        agent = _agent_at(device, flaky.url)
        first = agent.run_once()
        assert first.kind == "download_failed" and first.transient, first
        part = Path(device.config.slot_dir) / "downloads" / f"{releases['v2'].sha256}.part"
        size = part.stat().st_size
        assert 0 < size < releases["v2"].model.stat().st_size
        second = agent.run_once()
        assert second.kind == "updated", second
        assert any(f"range=bytes={size}-" in r for r in flaky.requests), flaky.requests
    _assert_serves(device, releases["v2"].sha256)


@pytest.mark.parametrize("path", ["/metadata/timestamp.json", "/targets/channels/"])
def test_unreachable_or_tampered_metadata_keeps_the_model(device, repo, path):
    with fault_server(repo.path / "public", "tamper", path) as evil:
        result = _agent_at(device, evil.url).run_once()
    assert result.kind in ("metadata_rejected", "rejected", "download_failed"), result
    assert result.kind != "updated"
