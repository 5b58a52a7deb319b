"""Rollouts that halt on behaviour, on SQLite and on PostgreSQL: telemetry from the stage's devices
against the previous release on the same devices (latency, confidence) and against the release's
golden data (drift), and their error rate; a halt names its gate and the devices; a stage waits for
telemetry before it advances; a cohort rollback is optional."""

from __future__ import annotations

import pytest
from telemetry_fakes import aggregate, golden_profile

from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.config import RolloutConfig, TelemetryGates
from edgeship.ship.rollout.store import RolloutStore


@pytest.fixture
def store(db_url):
    s = RolloutStore(db_url)
    yield s
    s.close()


OLD, NEW = "models/m/1/m.onnx", "models/m/2/m.onnx"
ALL_GATES = TelemetryGates(max_latency_regression=0.2, max_error_rate=0.05, max_drift=0.25,
                           max_confidence_drop=0.25, min_inferences=50)


def _fleet_on_old(store: RolloutStore, n: int, latency_ms: float = 2.0) -> list[str]:
    """``n`` devices that ran OLD and sent telemetry on it."""
    ids = [f"dev-{i:03d}" for i in range(n)]
    for i, d in enumerate(ids):
        store.assign(d, "m", "stable", OLD)
        store.ingest(d, [aggregate(OLD, latency_ms=latency_ms, seed=i)], [f"old-{d}-0000"], [0])
    return ids


def _install(store: RolloutStore, ids: list[str], rid: int) -> list[str]:
    """The devices the rollout assigns NEW to install it and report success; returns them."""
    got = []
    for d in ids:
        a = store.assign(d, "m", "stable", OLD)
        if a["target"] == NEW:
            store.report(Outcome("updated", device_id=d, rollout=a, target=NEW, active_target=NEW))
            got.append(d)
    return got


def _serve(store: RolloutStore, devices: list[str], seq: int = 1, **kw: object) -> None:
    for i, d in enumerate(devices):
        store.ingest(d, [aggregate(NEW, seed=100 + i + 1000 * seq, **kw)], [f"new-{d}-{seq:04d}"], [0])  # type: ignore[arg-type]


def _start(store: RolloutStore, gates: TelemetryGates = ALL_GATES, **kw: object) -> dict:
    r = store.create(RolloutConfig(model="m", target=NEW, from_target=OLD, stages=(10, 50, 100), gates=gates,
                                   **kw))  # type: ignore[arg-type]
    store.put_profile(NEW, golden_profile())
    return r


def test_a_stage_waits_for_telemetry_then_advances_when_the_gates_pass(store):
    ids = _fleet_on_old(store, 60)
    r = _start(store)
    canary = _install(store, ids, r["id"])
    assert 2 <= len(canary) <= 15
    # Installed everywhere in the canary, but no telemetry yet: the stage holds.
    assert store.rollout(r["id"])["stage"] == 0
    _serve(store, canary)
    store.report(Outcome("updated", device_id=canary[0], rollout={"rollout": r["id"]}, target=NEW, active_target=NEW))
    after = store.rollout(r["id"])
    assert after["status"] == "active" and after["stage"] == 1, after
    verdicts = {v["gate"]: v for v in after["gate_results"]}
    assert set(verdicts) == {"latency_regression", "error_rate", "drift", "confidence_drop"}
    assert all(v["passed"] for v in verdicts.values()), verdicts
    assert abs(verdicts["latency_regression"]["value"]) < 0.1 and verdicts["drift"]["value"] < 0.25


@pytest.mark.parametrize(("gates", "serving"), [
    (["latency_regression"], {"latency_ms": 2.6}),  # 30% slower than on the old release
    (["error_rate"], {"errors": 10}),  # 10 of 60 inferences fail
    (["drift"], {"shift": 1.5}),  # inputs moved 1.5 standard deviations
    (["drift", "confidence_drop"], {"sharpness": 0.0}),  # outputs went flat: their distribution moved too
])
def test_each_gate_halts_the_rollout_naming_itself_and_the_devices(store, gates, serving):
    ids = _fleet_on_old(store, 60)
    r = _start(store)
    canary = _install(store, ids, r["id"])
    _serve(store, canary, **serving)
    store.report(Outcome("updated", device_id=canary[0], rollout={"rollout": r["id"]}, target=NEW, active_target=NEW))
    halted = store.rollout(r["id"])
    assert halted["status"] == "halted" and halted["stage"] == 0, halted
    assert halted["halt"]["gates"] == gates and halted["halt"]["gate"] == gates[0]
    assert all(g in halted["reason"] for g in gates)
    # It halts as soon as min_reports (2) devices misbehave, naming those it had judged by then.
    named = halted["halt"]["devices"]
    assert set(named) <= set(canary) and len(named) >= 2 and all(d in halted["reason"] for d in named)
    # Halted with rollback (the default): every device is sent back to the old release.
    assert {store.assign(d, "m", "stable", NEW)["target"] for d in ids} == {OLD}


def test_latency_is_compared_on_the_same_devices(store):
    """A canary of slow devices is not a regression: each device is compared with itself."""
    ids = [f"dev-{i:03d}" for i in range(60)]
    for d in ids:
        store.assign(d, "m", "stable", OLD)
    r = _start(store, TelemetryGates(max_latency_regression=0.2))
    canary = [d for d in ids if store.assign(d, "m", "stable", OLD)["target"] == NEW]
    for i, d in enumerate(ids):  # the canary's devices are slow ones: 8 ms on the old release, the others 2 ms
        store.ingest(d, [aggregate(OLD, latency_ms=8.0 if d in canary else 2.0, seed=i)], [f"old-{d}-0000"], [0])
    _install(store, ids, r["id"])
    _serve(store, canary, latency_ms=8.4)  # 5% slower than on the old release, 4x the fleet's old median
    store.report(Outcome("updated", device_id=canary[0], rollout={"rollout": r["id"]}, target=NEW, active_target=NEW))
    after = store.rollout(r["id"])
    assert after["status"] == "active" and after["stage"] == 1
    (latency,) = after["gate_results"]
    assert latency["passed"] and 0.0 < latency["value"] < 0.1


def test_without_cohort_rollback_a_halted_cohort_holds(store):
    ids = _fleet_on_old(store, 60)
    r = _start(store, rollback_on_halt=False)
    canary = _install(store, ids, r["id"])
    _serve(store, canary, latency_ms=3.0)
    store.report(Outcome("updated", device_id=canary[0], rollout={"rollout": r["id"]}, target=NEW, active_target=NEW))
    assert store.rollout(r["id"])["status"] == "halted"
    for d in ids:
        assert store.assign(d, "m", "stable", NEW if d in canary else OLD)["target"] == (NEW if d in canary else OLD)


def test_telemetry_is_taken_once_and_drift_is_per_device_and_cohort(store):
    ids = _fleet_on_old(store, 4)
    store.put_profile(NEW, golden_profile())
    agg = aggregate(NEW, seed=1)
    assert store.ingest(ids[0], [agg], ["same-report-id"], [0]) == {"accepted": 1, "duplicates": 0}
    assert store.ingest(ids[0], [agg], ["same-report-id"], [0]) == {"accepted": 0, "duplicates": 1}  # a retry
    store.ingest(ids[1], [aggregate(NEW, seed=2, shift=2.0)], ["shifted-report"], [3])
    assert store.telemetry_targets()[NEW] == {"devices": 2, "inferences": 120, "errors": 0, "dropped": 3}
    d = store.drift(NEW)
    assert d["devices"][ids[0]]["psi"] < 0.25 < d["devices"][ids[1]]["psi"]
    assert d["devices"][ids[1]]["worst"] == "inputs.x.value"
    cohort = store.drift(NEW, [ids[0]])
    assert cohort["scores"]["inputs.x.value"] < 0.25 < d["scores"]["inputs.x.value"]
    series = store.telemetry_series(NEW, bucket_s=60)
    assert sum(p["inferences"] for p in series) == 120 and series[0]["p50"] == pytest.approx(2.0, rel=0.05)
