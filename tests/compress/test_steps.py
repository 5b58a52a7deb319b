"""Compression steps by config type: a recipe's dict picks the class by kind, the class picks the step."""

from __future__ import annotations

import dataclasses

import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.distill.step import distill
from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.prune.step import prune
from edgeship.compress.qat.config import QatConfig
from edgeship.compress.qat.step import qat
from edgeship.compress.steps import compress, get_step, register_step
from edgeship.core.config import Config
from edgeship.core.errors import BadInput


def test_steps_dispatch_on_the_config_type_from_a_recipe_dict():
    config = Config.from_dict({"kind": "prune", "ratio": 0.3})  # the kind picks the class
    assert isinstance(config, PruneConfig)
    assert get_step(config) is prune and get_step(DistillConfig) is distill and get_step(QatConfig()) is qat
    with one_torch_thread():
        result = compress(digits_source(), config, quiet=True)
    assert result.source.module.features[0].out_channels == 11  # 16 - 30% (rounded)


def test_unknown_and_duplicate_steps():
    @dataclasses.dataclass(frozen=True)
    class Other(Config):
        pass

    with pytest.raises(BadInput, match="unknown compression step for Other; known: DistillConfig, PruneConfig, "
                                       "QatConfig"):
        get_step(Other())
    with pytest.raises(ValueError, match="registered twice"):
        register_step(PruneConfig)(prune)
