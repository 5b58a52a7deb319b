"""Compression steps by config kind, and the optimize variants built on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.compress.prune import PruneConfig
from edgeship.compress.steps import compress
from edgeship.core.config import Config
from edgeship.core.errors import BadInput


def _ctx(tmp_path: Path, source, name: str):
    from edgeship.core.data import load_data
    from edgeship.pipeline.variants import VariantContext

    io = digits_source().io
    return VariantContext(fp32=None, source=source, out=tmp_path / f"{name}.onnx",
                          calib=lambda: load_data("data:digits-calib", io), eval=lambda: None,
                          golden=tmp_path / "golden.npz", gates=(), task="classification")


def test_steps_dispatch_on_the_config_kind_from_a_recipe_dict():
    config = Config.from_dict({"kind": "prune", "ratio": 0.3})  # the kind picks the class
    assert isinstance(config, PruneConfig)
    with one_torch_thread():
        result = compress(digits_source(), config, quiet=True)
    assert result.source.module.features[0].out_channels == 11  # 16 - 30% (rounded)
    with pytest.raises(BadInput, match="unknown compression step"):
        from edgeship.compress.steps import get_step

        get_step("nope")


@pytest.mark.slow
def test_qat_int4_variant_builds_an_int4_model_for_optimize(tmp_path):
    import onnx

    import edgeship.compress.variants  # noqa: F401  (registers the variants)
    from edgeship.pipeline.variants import get_variant

    variant = get_variant("qat-int4")
    assert variant.precision == "int4"
    with one_torch_thread():
        model = variant.build(_ctx(tmp_path, digits_source(), "qat4"))
    assert model.path == tmp_path / "qat4.onnx" and model.facts["precision"] == "int4"
    types = {t.data_type for t in onnx.load(str(model.path)).graph.initializer if len(t.dims) >= 2}
    assert types == {onnx.TensorProto.INT4}


def test_variant_on_an_onnx_source_names_the_fix(tmp_path):
    import edgeship.compress.variants  # noqa: F401
    from edgeship.pipeline.variants import get_variant

    with pytest.raises(BadInput, match="PyTorch source"):
        get_variant("prune-50").build(_ctx(tmp_path, None, "p"))
