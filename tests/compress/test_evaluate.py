"""Compression's accuracy report: the check engine's metrics for the first output, in torch and in ONNX
Runtime, with the one "is this a classifier" rule."""

from __future__ import annotations

import numpy as np
import pytest
from compress_models import digits_source

from edgeship.compress import evaluate
from edgeship.core.data import load_data
from edgeship.core.errors import InternalError


@pytest.fixture(scope="module")
def digits():
    return digits_source()


def test_a_model_against_itself_is_exact(digits, tmp_path):
    from edgeship.export.exporter import export

    ds = evaluate.eval_dataset(digits, None, limit=40)  # the source's own held-out data
    assert ds.name == "data:digits-test" and len(ds) == 40
    same = evaluate.evaluate_torch(digits, digits, ds)
    assert same["top1_agreement"] == 1.0 and same["accuracy_drop"] == 0 and same["cosine_min"] == pytest.approx(1.0)
    assert set(same) == {"accuracy", "ref_accuracy", "accuracy_drop", "top1_agreement", "cosine_mean", "cosine_min",
                         "max_abs"}
    path = export(digits, tmp_path / "d.onnx").path
    onnx_metrics = evaluate.evaluate_onnx(path, digits, ds)
    assert onnx_metrics["size_bytes"] == path.stat().st_size and onnx_metrics["top1_agreement"] == 1.0


def test_summary_rules():
    ref = [np.array([[0.1, 0.9]]), np.array([[0.8, 0.2]])]
    cand = [np.array([[0.2, 0.8]]), np.array([[0.3, 0.7]])]
    cls = evaluate.output_summary(ref, cand, np.array([1, 0]), "classification")
    assert cls["top1_agreement"] == 0.5 and cls["accuracy"] == 50.0 and cls["ref_accuracy"] == 100.0
    emb = evaluate.output_summary(ref, cand, None, "embedding")
    assert "top1_agreement" not in emb and emb["cosine_min"] < 1
    with pytest.raises(InternalError, match="cannot be compared"):
        evaluate.output_summary(ref, [np.zeros((1, 3)), np.zeros((1, 3))], None, "other")


def test_eval_data_spec_and_dataset(digits):
    ds = load_data("data:digits-test", digits.io, limit=3)
    assert evaluate.eval_dataset(digits, ds) is ds
    assert len(evaluate.eval_dataset(digits, "data:digits-calib", limit=5)) == 5
