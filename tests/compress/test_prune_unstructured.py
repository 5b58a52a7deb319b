"""Unstructured pruning: zeroed weights, the same dense shapes (what a dense runtime runs no faster)."""

from __future__ import annotations

import onnx
import pytest
from compress_models import digits_source
from onnx import numpy_helper

from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.prune.step import prune
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


def test_unstructured_zeroes_weights_and_keeps_shapes(digits, tmp_path):
    out = tmp_path / "s80.onnx"
    result = prune(digits, PruneConfig(ratio=0.8, mode="unstructured"), out=out, quiet=True)
    assert result.report["sparsity"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert result.report["params"]["ratio"] == 1.0  # same dense shapes
    model = onnx.load(str(out))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if len(t.dims) >= 2]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert zeros == pytest.approx(0.8, abs=0.01)  # the zeros are stored, not removed


def test_unstructured_keep_and_unknown_layers(digits):
    result = prune(digits, PruneConfig(ratio=0.5, mode="unstructured", keep=("features.0",)), quiet=True)
    assert not (result.source.module.features[0].weight == 0).any()  # kept whole
    assert {"layer": "features.0", "type": "Conv2d", "why": "kept on request (keep)"} in result.report["skipped"]
    with pytest.raises(BadInput, match="no layer named nope"):
        prune(digits, PruneConfig(ratio=0.5, mode="unstructured", keep=("nope",)), quiet=True)
