"""The compression variants optimize builds: each config built by the builder of its type."""

from __future__ import annotations

from pathlib import Path

import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.core.errors import BadInput


def _ctx(tmp_path: Path, source, name: str):
    from edgeship.core.data import load_data
    from edgeship.pipeline.variants import VariantContext

    io = digits_source().io
    return VariantContext(fp32=None, source=source, out=tmp_path / f"{name}.onnx",
                          calib=lambda: load_data("data:digits-calib", io), eval=lambda: None,
                          golden=tmp_path / "golden.npz", gates=(), task="classification")


@pytest.mark.slow
def test_qat_int4_variant_builds_an_int4_model_for_optimize(tmp_path):
    import onnx

    import edgeship.pipeline.compress_variants  # noqa: F401  (registers the variants)
    from edgeship.pipeline.variants import get_variant

    variant = get_variant("qat-int4")
    assert variant.precision == "int4"
    with one_torch_thread():
        model = variant.build(_ctx(tmp_path, digits_source(), "qat4"))
    assert model.path == tmp_path / "qat4.onnx" and model.facts["precision"] == "int4"
    types = {t.data_type for t in onnx.load(str(model.path)).graph.initializer if len(t.dims) >= 2}
    assert types == {onnx.TensorProto.INT4}


def test_variant_on_an_onnx_source_names_the_fix(tmp_path):
    import edgeship.pipeline.compress_variants  # noqa: F401
    from edgeship.pipeline.variants import get_variant

    with pytest.raises(BadInput, match="PyTorch source"):
        get_variant("prune-50").build(_ctx(tmp_path, None, "p"))


def test_variants_take_the_recipes_options_and_dispatch_on_the_config_type(tmp_path):
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.train_settings import PruneTraining
    from edgeship.pipeline.compress_variants import build_compressed
    from edgeship.pipeline.variants import VARIANT_BUILDERS, get_variant

    ctx = _ctx(tmp_path, digits_source(), "p")
    ctx.options = {"train": {"epochs": 1, "max_steps": 2}}  # a recipe's variant_options for prune-30
    config = get_variant("prune-30").config_for(ctx)
    assert config == PruneConfig(ratio=0.3, train=PruneTraining(epochs=1, max_steps=2, lr=1e-3))
    assert VARIANT_BUILDERS.get(config) is build_compressed
    with one_torch_thread():
        model = get_variant("prune-30").build(ctx)
    assert model.path == tmp_path / "p.onnx" and model.provenance[0].config["train"]["max_steps"] == 2
    assert get_variant("fp32").config_for(ctx) is None
