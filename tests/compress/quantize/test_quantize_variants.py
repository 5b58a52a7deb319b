"""The variants ``edgeship optimize`` builds from the quantizers, through the pipeline's own context."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.artifact import Model
from edgeship.core.data import load_data
from edgeship.pipeline.variants import VariantContext, get_variant


@pytest.mark.parametrize(("name", "precision"), [("fp16", "fp16"), ("int8-dynamic", "int8"), ("int8-static", "int8"),
                                                 ("int4-weight", "int4"), ("mixed", "mixed")])
def test_optimize_builds_each_quantized_variant(mlp: Path, mlp_calib: Path, mlp_test: Path, tmp_path: Path,
                                               name: str, precision: str) -> None:
    fp32 = Model.open(mlp)
    ctx = VariantContext(fp32=fp32, source=None, out=tmp_path / f"{name}.onnx",
                         calib=lambda: load_data(mlp_calib, fp32.io), eval=lambda: load_data(mlp_test, fp32.io),
                         golden=tmp_path / "golden.npz", gates=("cosine_min>=0.95",), task="other")
    variant = get_variant(name)
    model = variant.build(ctx)
    assert variant.precision == precision
    assert model.path == tmp_path / f"{name}.onnx" and model.provenance[-1].config["kind"] == name
    if name == "mixed":
        assert model.facts["gate"]["gates"] == ["cosine_min>=0.95"]
