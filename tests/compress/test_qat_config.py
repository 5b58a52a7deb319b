"""QatConfig: the bits are a Literal checked by Config itself; QAT fine-tunes at a low rate by default."""

from __future__ import annotations

import pytest

from edgeship.compress.qat.config import QatConfig
from edgeship.compress.train_settings import QatTraining
from edgeship.core.config import Config
from edgeship.core.errors import BadInput


def test_bits_are_checked_once_by_the_config_machinery():
    with pytest.raises(BadInput, match=r"QatConfig\.bits=3 is not one of the choices; choose 8 or 4"):
        QatConfig(bits=3)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="choose 8 or 4"):
        Config.from_dict({"kind": "qat", "bits": 2})


def test_defaults_and_flat_keys():
    assert QatConfig().train == QatTraining() and (QatTraining().epochs, QatTraining().lr) == (2, 1e-4)
    cfg = Config.from_dict({"kind": "qat", "bits": 4, "epochs": 3, "lr": 3e-4, "compare_ptq": False})
    assert cfg == QatConfig(bits=4, compare_ptq=False, train=QatTraining(epochs=3, lr=3e-4))
    assert QatConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(BadInput, match="calib_samples"):
        QatConfig(calib_samples=0)
