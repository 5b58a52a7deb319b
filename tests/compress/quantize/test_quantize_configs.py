"""Configs round-trip and validate; the registry dispatches on the config's type."""

from __future__ import annotations

import pytest

from edgeship.compress.quantize.api import default_method_configs, methods, quantizer_for, register_quantizer
from edgeship.compress.quantize.configs import (
    Fp16Config,
    Int4WeightConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
    MixedConfig,
    QuantConfig,
)
from edgeship.core.errors import BadInput

ALL = [Fp16Config(op_block_list=("Resize",)), Int8DynamicConfig(smooth_alpha=0.7, nodes_to_exclude=("a", "b")),
       Int8StaticConfig(calibration="entropy", pad_policy="pad"), Int4WeightConfig(block_size=64, bits=8),
       MixedConfig(gates=("accuracy_drop<=0.5",), candidates=(Int8StaticConfig(), Int8DynamicConfig(smooth_alpha=0.5)))]


@pytest.mark.parametrize("cfg", ALL, ids=lambda c: c.kind)
def test_round_trip_json_and_yaml(cfg: QuantConfig) -> None:
    assert QuantConfig.from_json(cfg.to_json()) == cfg
    assert QuantConfig.from_yaml(cfg.to_yaml()) == cfg
    assert type(QuantConfig.from_dict(cfg.to_dict())) is type(cfg)


def test_mixed_candidates_come_back_typed() -> None:
    back = MixedConfig.from_json(MixedConfig().to_json())
    assert [type(c) for c in back.candidates] == [type(c) for c in MixedConfig().candidates]
    assert back.candidates[1].smooth_alpha == 0.7


@pytest.mark.parametrize(("factory", "field"), [
    (lambda: Int8StaticConfig(calibration="kl"), "calibration"),
    (lambda: Int8StaticConfig(percentile=100.0), "percentile"),
    (lambda: Int8StaticConfig(calib_samples=1), "calib_samples"),
    (lambda: Int8DynamicConfig(smooth_alpha=1.5), "smooth_alpha"),
    (lambda: Int4WeightConfig(block_size=24), "block_size"),
    (lambda: Int4WeightConfig(bits=3), "bits"),
    (lambda: MixedConfig(gates=()), "gates"),
    (lambda: MixedConfig(margin=1.0), "margin"),
    (lambda: MixedConfig(candidates=(Fp16Config(),)), "candidates"),
    (lambda: Int8DynamicConfig(nodes_to_exclude="fc1"), "nodes_to_exclude"),
])
def test_invalid_values_name_the_field(factory, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match=field):
        factory()


def test_registry_dispatches_on_config_type() -> None:
    assert methods() == ["fp16", "int4-weight", "int8-dynamic", "int8-static", "mixed"]
    for cfg in ALL:
        assert quantizer_for(cfg).config_type is type(cfg)
    with pytest.raises(BadInput, match="quantization config"):
        quantizer_for("int8-dynamic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="registered twice"):
        register_quantizer(Int8DynamicConfig)(lambda *a: {})


def test_default_method_configs_cover_every_method() -> None:
    assert sorted(c.kind for c in default_method_configs()) == methods()
