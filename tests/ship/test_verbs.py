"""The ship verbs the CLI and the API call: init from role maps, publish then roll out, key
revocation by prefix, the device's status."""

from __future__ import annotations

import pytest

from edgeship.core.errors import BadInput
from edgeship.ship.repository import ShipRepository
from edgeship.ship.rollout.config import RolloutConfig, RolloutPlan, TelemetryGates
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import AccessTokens, read_token, write_token
from edgeship.ship.telemetry import reference_profile
from edgeship.ship.verbs import (
    device_status,
    fleet_status,
    init_repository,
    publish_release,
    release_profile,
    revoke_signing_key,
    steer_rollout,
)


def test_init_repository_from_role_maps(tmp_path):
    repo = init_repository(tmp_path / "r", thresholds={"root": 2}, keys_per_role={"targets": 2},
                           expiry_days={"timestamp": 2.0})
    roles = repo.summary()["roles"]
    assert roles["root"]["threshold"] == 2 and len(roles["root"]["keys"]) == 2
    assert len(roles["targets"]["keys"]) == 2 and roles["targets"]["threshold"] == 1
    assert repo.config.timestamp_expiry_days == 2.0
    with pytest.raises(BadInput, match="threshold"):
        init_repository(tmp_path / "r2", thresholds={"root": 0})


def test_publish_then_roll_out_each_release(tmp_path, releases):
    init_repository(tmp_path / "r")
    admin_file = write_token(tmp_path / "admin.token")
    admin = read_token(admin_file)
    with RolloutServer(tmp_path / "rollouts.db", tokens=AccessTokens(admin=admin, device=admin[::-1])) as service:
        (first,) = publish_release(tmp_path / "r", releases["v1"].model, "stable", "1.0.0",
                                   golden=releases["v1"].golden, name="tiny")
        assert "rollout" not in first and first["previous"] is None
        plan = RolloutPlan(service.url, admin_file, stages=(10.0, 100.0), failure_threshold=0.3,
                           gates=TelemetryGates(max_latency_regression=0.25, max_drift=0.3), rollback_on_halt=False)
        (second,) = publish_release(tmp_path / "r", releases["v2"].model, "stable", "2.0.0",
                                    golden=releases["v2"].golden, name="tiny", gates=["cosine_min>=0.98"],
                                    rollout=plan)
        assert second["previous"] == first["target"] and second["gates"] == ["cosine_min>=0.98"]
        (rollout,) = fleet_status(service.url, admin_file)["rollouts"]
        assert rollout["id"] == second["rollout"]
        assert (rollout["target"], rollout["from_target"]) == (second["target"], first["target"])
        assert rollout["stages"] == [10.0, 100.0] and rollout["failure_threshold"] == 0.3
        cfg = RolloutConfig.from_dict(rollout["config"])
        assert cfg.gates.max_latency_regression == 0.25 and cfg.gates.max_drift == 0.3 and not cfg.rollback_on_halt
        # The service got the release's reference profile: the statistics of its golden inputs and outputs.
        profile = service.store.drift(second["target"])
        assert profile["reference"] is True
        assert release_profile(tmp_path / "r", second["target"]) == reference_profile(releases["v2"].golden)
        assert steer_rollout(service.url, rollout["id"], "halt", admin_file)["status"] == "halted"
        # A token file that cannot be read stops the publish before anything is published.
        with pytest.raises(BadInput, match="rollout-token"):
            publish_release(tmp_path / "r", releases["v3"].model, "stable", "3.0.0", golden=releases["v3"].golden,
                            name="tiny", rollout=RolloutPlan(service.url, tmp_path / "missing.token"))
        assert not any("/3.0.0/" in t for t in ShipRepository(tmp_path / "r").targets())


def test_revoke_by_prefix_needs_one_match(tmp_path):
    repo = init_repository(tmp_path / "r", keys_per_role={"targets": 2})
    keyids = repo.load("root").signed.roles["targets"].keyids
    with pytest.raises(BadInput, match="matches 0 keys of targets"):
        revoke_signing_key(tmp_path / "r", "targets", "not-hex")
    assert revoke_signing_key(tmp_path / "r", "targets", keyids[0][:10]) == keyids[0]
    assert ShipRepository(tmp_path / "r").load("root").signed.roles["targets"].keyids == keyids[1:]


def test_device_status_of_a_missing_slot_dir(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        device_status(tmp_path / "nowhere")
