"""Staged rollouts: stable cohorts, stages that advance on reports and halt on failures, the HTTP
service with real agents."""

from __future__ import annotations

import pytest

from conftest import agent_config, publish
from edgeship.core.artifact import file_sha256
from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.rollout import RolloutClient, RolloutConfig, RolloutServer, RolloutStore, cohort_bucket


def test_cohorts_are_stable_and_spread():
    buckets = [cohort_bucket(7, f"dev-{i}") for i in range(2000)]
    assert buckets == [cohort_bucket(7, f"dev-{i}") for i in range(2000)]  # stable
    share = sum(b < 10 for b in buckets) / len(buckets)
    assert 0.07 < share < 0.13  # about 10% of devices fall in a 10% stage
    assert [cohort_bucket(8, f"dev-{i}") for i in range(20)] != buckets[:20]  # each rollout draws anew


def test_config_is_validated():
    with pytest.raises(BadInput, match="increasing"):
        RolloutConfig(model="m", target="t", stages=(50, 10, 100))
    with pytest.raises(BadInput, match="last stage"):
        RolloutConfig(model="m", target="t", stages=(1, 10))
    cfg = RolloutConfig(model="m", target="t", stages=(5, 100))
    assert RolloutConfig.from_json(cfg.to_json()) == cfg


def _fleet(store: RolloutStore, n: int, current: str = "old") -> list[str]:
    ids = [f"dev-{i}" for i in range(n)]
    for d in ids:
        store.assign(d, "m", "stable", current)
    return ids


def test_stages_advance_with_successes(tmp_path):
    store = RolloutStore(tmp_path / "r.db")
    ids = _fleet(store, 100)
    r = store.create(RolloutConfig(model="m", target="new", from_target="old", stages=(10, 50, 100)))
    seen_stages = set()
    for _ in range(5):  # devices poll, update and report until the rollout completes
        for d in ids:
            a = store.assign(d, "m", "stable", "old")
            seen_stages.add(a["percent"])
            if a["target"] == "new":
                store.report({"device_id": d, "rollout": a, "target": "new", "outcome": "updated",
                              "active_target": "new"})
    final = store.rollout(r["id"])
    assert final["status"] == "complete" and seen_stages >= {10, 50, 100}
    # Until its stage came, a device outside the cohort was told to stay on the old release.
    assert store.status()["fleet"]["by_target"] == {"new": 100}
    store.close()


def test_failures_halt_the_rollout_and_send_devices_back(tmp_path):
    store = RolloutStore(tmp_path / "r.db")
    ids = _fleet(store, 200)
    r = store.create(RolloutConfig(model="m", target="bad", from_target="old", stages=(5, 50, 100)))
    in_canary = [d for d in ids if store.assign(d, "m", "stable", "old")["target"] == "bad"]
    assert 3 <= len(in_canary) <= 20
    for d in in_canary[:2]:
        store.report({"device_id": d, "rollout": {"rollout": r["id"]}, "target": "bad",
                      "outcome": "health_check_failed", "active_target": "old"})
    halted = store.rollout(r["id"])
    assert halted["status"] == "halted" and halted["percent"] == 5 and "2 of 2" in halted["reason"]
    assert all(store.assign(d, "m", "stable", "old")["target"] == "old" for d in ids)
    store.close()


def test_transient_failures_do_not_halt(tmp_path):
    store = RolloutStore(tmp_path / "r.db")
    ids = _fleet(store, 50)
    r = store.create(RolloutConfig(model="m", target="new", from_target="old", stages=(20, 100)))
    cohort = [d for d in ids if store.assign(d, "m", "stable", "old")["target"] == "new"]
    for d in cohort:
        store.report({"device_id": d, "rollout": {"rollout": r["id"]}, "target": "new", "outcome": "rejected",
                      "transient": True, "detail": "hash mismatch in transit"})
    assert store.rollout(r["id"])["status"] == "active"
    store.close()


@pytest.mark.slow
def test_rollout_service_with_real_agents(repo, server, releases, tmp_path):
    with RolloutServer(tmp_path / "rollouts.db") as service:
        agents = [Agent(agent_config(repo, server.url, tmp_path / f"dev{i}", device_id=f"dev-{i}",
                                     rollout_url=service.url, first_runs=False)) for i in range(6)]
        for a in agents:  # no rollout yet: devices follow the channel (v1)
            assert a.run_once()["outcome"] == "updated"
        rel = publish(repo, releases["bad"], "2.0.0")
        client = RolloutClient(service.url, timeout=5)
        ro = client.start(RolloutConfig(model="tiny", target=rel["target"], from_target=rel["previous"],
                                        stages=(50, 100), min_reports=1))
        outcomes = [a.run_once()["outcome"] for a in agents]
        assert "health_check_failed" in outcomes
        assert set(outcomes) <= {"health_check_failed", "up_to_date"}
        status = client.status()
        r = next(x for x in status["rollouts"] if x["id"] == ro["id"])
        assert r["status"] == "halted" and r["percent"] == 50
        assert status["fleet"]["devices"] == 6
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


def test_unreachable_rollout_service_keeps_the_model(device, repo, releases):
    cfg = device.config.replace(rollout_url="http://127.0.0.1:9")  # nothing listens on port 9
    publish(repo, releases["v2"], "2.0.0")
    result = Agent(cfg).run_once()
    assert result["outcome"] == "rollout_unreachable" and result["transient"]
    assert file_sha256(active_model(cfg.slot_dir)) == releases["v1"].sha256


def test_rollout_cli_start_halt_status(tmp_path):
    import json
    import subprocess
    import sys

    # The CLI runs in its own process, as a user runs it (in-process runs share pytest's captured
    # streams with native libraries that earlier tests loaded).
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgeship", *args], capture_output=True, text=True, timeout=60)

    with RolloutServer(tmp_path / "rollouts.db") as service:
        proc = cli("ship", "rollout", "start", "--server", service.url, "--model", "m", "--target",
                   "models/m/2/x.onnx", "--from", "models/m/1/x.onnx", "--stages", "5,100", "--json")
        assert proc.returncode == 0, proc.stderr
        started = json.loads(proc.stdout)
        assert started["status"] == "active" and started["percent"] == 5
        # A fleet of one: its only device is the canary even though 5% of one device rounds to none.
        assert RolloutClient(service.url).assign("dev-1", "m", "stable", "models/m/1/x.onnx")["target"] == \
            "models/m/2/x.onnx"
        assert cli("ship", "rollout", "halt", str(started["id"]), "--server", service.url).returncode == 0
        proc = cli("ship", "status", "--server", service.url)
        assert proc.returncode == 0
        assert "1 devices" in proc.stdout and "halted at 5%" in proc.stdout
        assert cli("ship", "rollout", "advance", "--server", service.url).returncode == 2  # no id: usage error
        assert cli("ship", "rollout", "start", "--server", service.url, "--model", "m", "--target", "t",
                   "--stages", "10,50").returncode == 2  # the last stage must be 100


def test_without_a_rollout_only_empty_devices_follow_the_channel(tmp_path):
    store = RolloutStore(tmp_path / "r.db")
    assert store.assign("new-device", "m", "stable", None)["follow_channel"] is True
    # A device that runs a model waits for a rollout: a release published just before its rollout
    # starts does not slip past the canary.
    assert store.assign("old-device", "m", "stable", "models/m/1/x.onnx") == {
        "target": None, "follow_channel": False, "rollout": None}
    store.close()
