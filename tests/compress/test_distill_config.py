"""DistillConfig: the student spec is checked on construction; distillation's measured training recipe
is the default of its ``train`` settings."""

from __future__ import annotations

import pytest

from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.distill.students import parse_student
from edgeship.compress.train_settings import DistillTraining
from edgeship.core.config import Config
from edgeship.core.errors import BadInput


def test_student_specs_parse():
    assert parse_student("layers=3") == ("layers", "3")
    assert parse_student("width=0.5") == ("width", "0.5")
    assert parse_student("net.py:build") == ("source", "net.py:build")
    with pytest.raises(BadInput, match="give a value"):
        DistillConfig(student="layers=")
    assert DistillConfig.from_json(DistillConfig(student="layers=0,2", text=("a.txt",)).to_json()).text == ("a.txt",)


def test_distillation_trains_on_its_measured_schedule_by_default():
    cfg = DistillConfig()
    assert cfg.train == DistillTraining() and cfg.freeze_embeddings and cfg.hidden_weight == 1.0
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.schedule, cfg.train.warmup, cfg.train.bucket) == \
        (3, 1e-3, "linear", 0.06, True)


def test_flat_training_keys_of_earlier_recipes_are_read_into_train():
    cfg = Config.from_dict({"kind": "distill", "student": "layers=2", "epochs": 1, "temperature": 2.0,
                            "train": {"lr": 5e-4}})
    assert isinstance(cfg, DistillConfig)
    assert (cfg.train.epochs, cfg.train.temperature, cfg.train.lr, cfg.train.schedule) == (1, 2.0, 5e-4, "linear")
    with pytest.raises(BadInput, match="unknown field"):
        Config.from_dict({"kind": "distill", "learning_rate": 1e-3})


@pytest.mark.parametrize(("changes", "words"), [
    ({"student": " "}, "student spec is empty"),
    ({"hidden_weight": -1.0}, "hidden_weight"),
    ({"train": {"epochs": 0}}, "epochs 0 must be at least 1"),
    ({"train": {"temperature": 0.0}}, "temperature"),
    ({"train": {"schedule": "step"}}, "schedule"),
    ({"train": {"warmup": 1.5}}, "warm"),
    ({"alpha": 2}, "between 0 and 1"),
])
def test_bad_values_name_the_field(changes, words):
    with pytest.raises(BadInput, match=words):
        DistillConfig.from_dict(changes)
