"""The Outcome of an update cycle: its JSON shape (the agent's state file, its reports and
``agent run --json``), parsing it back, and what a rollout counts."""

from __future__ import annotations

import json

from edgeship.ship.outcome import ALWAYS, FAILURE, KINDS, OK, SUCCESS, Outcome


def test_json_shape_keeps_the_fixed_keys_and_drops_unset_ones():
    o = Outcome("health_check_failed", target="models/m/2/m.onnx", detail="cosine_min 0.5 < 0.99",
                health={"healthy": False}, rollout={"rollout": 3, "stage": 0})
    d = o.to_dict()
    assert next(iter(d)) == "outcome" and d["outcome"] == "health_check_failed"
    assert set(d) == {*ALWAYS, "detail", "health", "rollout"}
    assert d["device_id"] is None and "transient" not in d and "kind" not in d
    assert json.loads(json.dumps(d)) == d  # plain JSON


def test_round_trip_and_unknown_keys():
    o = Outcome("updated", target="t", version="2.0.0", sha256="ab" * 32, slot="b", seconds=1.25,
                device_id="cam-1", agent_version="0.1.0", active_target="t", active_version="2.0.0",
                health={"why": "ok", "latency_ms": {"max": 1.0, "median": 0.5}}, rollout={"rollout": 7})
    assert Outcome.from_dict(o.to_dict()) == o
    assert Outcome.from_dict({**o.to_dict(), "added_by_a_newer_agent": [1]}) == o
    assert Outcome.from_dict({"device_id": "d"}).kind == "unknown"
    junk = Outcome.from_dict({"outcome": "rejected", "transient": 1, "rollout": "3", "health": [], "seconds": "x"})
    assert junk.transient is True and junk.rollout is None and junk.health is None and junk.seconds is None


def test_what_a_rollout_counts():
    assert Outcome("updated").succeeded and Outcome("reverted").succeeded
    assert Outcome("health_check_failed").failed
    assert not Outcome("rejected", transient=True).failed  # the network's fault, not the release's
    assert Outcome("rejected", transient=False).failed
    assert not Outcome("download_failed").failed and not Outcome("download_failed").succeeded
    assert Outcome("up_to_date").ok and not Outcome("rolled_back").ok
    assert Outcome("updated", rollout={"rollout": 4}).rollout_id == 4
    assert Outcome("updated", rollout={"rollout": None}).rollout_id is None
    assert Outcome("updated").rollout_id is None


def test_every_counted_kind_is_a_known_kind():
    assert set(KINDS) >= SUCCESS | FAILURE | OK
    assert not SUCCESS & FAILURE and "up_to_date" in OK
