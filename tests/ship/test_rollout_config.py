"""RolloutConfig and RolloutPlan are checked on construction; stage lists parse as users type them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.errors import BadInput, UsageError
from edgeship.ship.rollout.config import RolloutConfig, RolloutPlan, parse_stages


def test_config_is_validated():
    with pytest.raises(BadInput, match="increasing"):
        RolloutConfig(model="m", target="t", stages=(50, 10, 100))
    with pytest.raises(BadInput, match="last stage"):
        RolloutConfig(model="m", target="t", stages=(1, 10))
    with pytest.raises(BadInput, match="--model NAME"):
        RolloutConfig(target="t")
    with pytest.raises(BadInput, match="failure threshold"):
        RolloutConfig(model="m", target="t", failure_threshold=1.0)
    cfg = RolloutConfig(model="m", target="t", stages=(5, 100))
    assert RolloutConfig.from_json(cfg.to_json()) == cfg


def test_stages_parse():
    assert parse_stages("1, 10,50,100") == (1.0, 10.0, 50.0, 100.0)
    assert parse_stages("100,") == (100.0,)
    with pytest.raises(UsageError, match="--stages 'one,100'"):
        parse_stages("one,100")


def test_a_plan_is_checked_before_anything_is_published():
    plan = RolloutPlan("http://127.0.0.1:8081", Path("admin.token"), (5.0, 100.0), failure_threshold=0.1)
    cfg = plan.config_for("digits", "beta", "models/digits/2/m.onnx", "models/digits/1/m.onnx")
    assert cfg == RolloutConfig(model="digits", channel="beta", target="models/digits/2/m.onnx",
                                from_target="models/digits/1/m.onnx", stages=(5.0, 100.0), failure_threshold=0.1)
    with pytest.raises(BadInput, match="last stage"):
        RolloutPlan("http://127.0.0.1:8081", stages=(10.0, 50.0))
    with pytest.raises(BadInput, match="http"):
        RolloutPlan("127.0.0.1:8081")
