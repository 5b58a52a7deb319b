"""The one training-settings config: fields declared once, per-method defaults, validation, and the
flat layout of earlier versions read into ``train``."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from edgeship.compress.train_settings import (
    TRAIN_FIELDS,
    DistillTraining,
    PruneTraining,
    QatTraining,
    Schedule,
    TrainSettings,
)
from edgeship.core.errors import BadInput


def test_methods_change_defaults_only():
    """Subclasses redeclare no field of their own: the same fields, in the same order, with descriptions."""
    for cls in (PruneTraining, DistillTraining, QatTraining):
        assert tuple(f.name for f in dataclasses.fields(cls)) == TRAIN_FIELDS
        assert all(f.metadata.get("help") for f in dataclasses.fields(cls))
    changed = {cls.__name__: {f: getattr(cls(), f) for f in TRAIN_FIELDS if getattr(cls(), f) != getattr(
        TrainSettings(), f)} for cls in (PruneTraining, DistillTraining, QatTraining)}
    assert changed == {"PruneTraining": {"epochs": 0, "bucket": True},
                       "DistillTraining": {"epochs": 3, "schedule": "linear", "warmup": 0.06, "bucket": True},
                       "QatTraining": {"epochs": 2, "lr": 1e-4}}


def test_every_schedule_name_has_a_formula():
    from edgeship.compress.train import SCHEDULES

    assert set(typing.get_args(Schedule)) == set(SCHEDULES.names())


@pytest.mark.parametrize(("changes", "words"), [
    ({"schedule": "step"}, "schedule='step' is not one of the choices"),
    ({"warmup": 1.5}, "warm"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"batch_size": 0}, "batch_size"),
    ({"alpha": 1.5}, "between 0 and 1"),
    ({"max_steps": 0}, "max_steps"),
    ({"epochs": 0}, "epochs 0 must be at least 1"),
    ({"temperature": -1.0}, "temperature"),
    ({"grad_clip": 0.0}, "grad_clip"),
])
def test_bad_settings_are_one_line_errors(changes, words):
    with pytest.raises(BadInput, match=words) as err:
        TrainSettings(**changes)
    assert "\n" not in str(err.value)


def test_prune_may_skip_training_but_not_go_negative():
    assert PruneTraining(epochs=0).epochs == 0
    with pytest.raises(BadInput, match="at least 0"):
        PruneTraining(epochs=-1)


def test_round_trip():
    s = DistillTraining(lr=5e-4, max_steps=10, alpha=0.5)
    assert DistillTraining.from_yaml(s.to_yaml()) == s and DistillTraining.from_json(s.to_json()) == s
