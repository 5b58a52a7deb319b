"""PruneConfig: validated on construction, round-trips, and reads the flat layout of earlier versions."""

from __future__ import annotations

import pytest

from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.train_settings import PruneTraining, TrainSettings
from edgeship.core.config import Config
from edgeship.core.errors import BadInput


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_ratio_out_of_range_is_bad_input(ratio):
    with pytest.raises(BadInput, match="out of range"):
        PruneConfig(ratio=ratio)


def test_config_round_trips_through_yaml():
    cfg = PruneConfig(ratio=0.3, importance="taylor", keep=("features.0",), train=PruneTraining(epochs=2))
    assert PruneConfig.from_yaml(cfg.to_yaml()) == cfg


def test_fine_tuning_is_off_by_default_and_lives_in_train():
    cfg = PruneConfig(ratio=0.4)
    assert cfg.train == PruneTraining() and cfg.train.epochs == 0 and cfg.train.lr == 1e-3 and cfg.train.bucket
    assert cfg.to_dict()["train"]["epochs"] == 0


def test_old_flat_keys_are_read_into_train():
    """Recipes written for the flat layout keep working: finetune_epochs is train.epochs."""
    cfg = Config.from_dict({"kind": "prune", "ratio": 0.3, "finetune_epochs": 2, "lr": 1e-4, "schedule": "cosine"})
    assert isinstance(cfg, PruneConfig)
    assert cfg.train == PruneTraining(epochs=2, lr=1e-4, schedule="cosine")
    assert cfg.replace(lr=3e-4).train.lr == 3e-4 and cfg.replace(lr=3e-4).train.epochs == 2


def test_mode_importance_and_round_to_rules():
    with pytest.raises(BadInput, match=r"PruneConfig\.mode='sparse' is not one of the choices"):
        PruneConfig(mode="sparse")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="ranks single weights by magnitude"):
        PruneConfig(mode="unstructured", importance="taylor")
    with pytest.raises(BadInput, match="round_to"):
        PruneConfig(ratio=0.3, round_to=8, mode="unstructured")
    with pytest.raises(BadInput, match="give PruneTraining"):
        PruneConfig(train=TrainSettings())  # would lose prune's own training defaults
