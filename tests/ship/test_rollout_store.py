"""The rollout store, on SQLite and on PostgreSQL: stable cohorts, stages that advance on reports and
halt on failures, what a device without a rollout is told, and how reported outcomes are counted."""

from __future__ import annotations

import pytest

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.store import RolloutStore, cohort_bucket


@pytest.fixture
def store(db_url):
    s = RolloutStore(db_url)
    yield s
    s.close()


def test_cohorts_are_stable_and_spread():
    buckets = [cohort_bucket(7, f"dev-{i}") for i in range(2000)]
    assert buckets == [cohort_bucket(7, f"dev-{i}") for i in range(2000)]  # stable
    share = sum(b < 10 for b in buckets) / len(buckets)
    assert 0.07 < share < 0.13  # about 10% of devices fall in a 10% stage
    assert [cohort_bucket(8, f"dev-{i}") for i in range(20)] != buckets[:20]  # each rollout draws anew


def _fleet(store: RolloutStore, n: int, current: str = "old") -> list[str]:
    ids = [f"dev-{i}" for i in range(n)]
    for d in ids:
        store.assign(d, "m", "stable", current)
    return ids


def test_stages_advance_with_successes(store):
    ids = _fleet(store, 100)
    r = store.create(RolloutConfig(model="m", target="new", from_target="old", stages=(10, 50, 100)))
    seen_stages = set()
    for _ in range(5):  # devices poll, update and report until the rollout completes
        for d in ids:
            a = store.assign(d, "m", "stable", "old")
            seen_stages.add(a["percent"])
            if a["target"] == "new":
                store.report(Outcome("updated", device_id=d, rollout=a, target="new", active_target="new"))
    final = store.rollout(r["id"])
    assert final["status"] == "complete" and seen_stages >= {10, 50, 100}
    # Until its stage came, a device outside the cohort was told to stay on the old release.
    assert store.status()["fleet"]["by_target"] == {"new": 100}


def test_failures_halt_the_rollout_and_send_devices_back(store):
    ids = _fleet(store, 200)
    r = store.create(RolloutConfig(model="m", target="bad", from_target="old", stages=(5, 50, 100)))
    in_canary = [d for d in ids if store.assign(d, "m", "stable", "old")["target"] == "bad"]
    assert 3 <= len(in_canary) <= 20
    for d in in_canary[:2]:
        store.report(Outcome("health_check_failed", device_id=d, rollout={"rollout": r["id"]}, target="bad",
                             active_target="old"))
    halted = store.rollout(r["id"])
    assert halted["status"] == "halted" and halted["percent"] == 5 and "2 of 2" in halted["reason"]
    assert all(store.assign(d, "m", "stable", "old")["target"] == "old" for d in ids)


def test_transient_failures_do_not_halt(store):
    ids = _fleet(store, 50)
    r = store.create(RolloutConfig(model="m", target="new", from_target="old", stages=(20, 100)))
    cohort = [d for d in ids if store.assign(d, "m", "stable", "old")["target"] == "new"]
    for d in cohort:
        store.report(Outcome("rejected", device_id=d, rollout={"rollout": r["id"]}, target="new", transient=True,
                             detail="hash mismatch in transit"))
    assert store.rollout(r["id"])["status"] == "active"
    assert store.stage_stats(store.rollout(r["id"]))["reported"] == 0


def test_a_device_counts_by_its_latest_verdict(store):
    (device,) = _fleet(store, 1)
    r = store.create(RolloutConfig(model="m", target="new", from_target="old", stages=(100,), min_reports=2))
    a = store.assign(device, "m", "stable", "old")
    assert a["target"] == "new"
    store.report(Outcome("download_failed", device_id=device, rollout=a, target="new", transient=True))
    store.report(Outcome("up_to_date", device_id=device, rollout=a, target="new"))  # no verdict either
    stats = store.stage_stats(store.rollout(r["id"]))
    assert (stats["reported"], stats["succeeded"], stats["failed"]) == (0, 0, 0)
    store.report(Outcome("updated", device_id=device, rollout=a, target="new", active_target="new"))
    assert store.rollout(r["id"])["status"] == "complete"
    device_row = store.status()["devices"][0]
    assert device_row["last_outcome"] == "updated" and device_row["active_target"] == "new"


def test_a_report_needs_a_device_id(store):
    with pytest.raises(BadInput, match="device_id"):
        store.report(Outcome("updated", target="t"))


def test_without_a_rollout_only_empty_devices_follow_the_channel(store):
    assert store.assign("new-device", "m", "stable", None)["follow_channel"] is True
    # A device that runs a model waits for a rollout: a release published just before its rollout
    # starts does not slip past the canary.
    assert store.assign("old-device", "m", "stable", "models/m/1/x.onnx") == {
        "target": None, "follow_channel": False, "rollout": None}


def test_a_new_rollout_supersedes_the_old_one(store):
    _fleet(store, 3)
    first = store.create(RolloutConfig(model="m", target="v2", from_target="old"))
    second = store.create(RolloutConfig(model="m", target="v3", from_target="old"))
    assert store.rollout(first["id"])["status"] == "superseded"
    assert store.current("m", "stable")["id"] == second["id"]
