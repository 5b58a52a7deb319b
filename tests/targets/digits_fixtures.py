"""Digits fixtures shared by the target and placement tests: the zoo's digits CNN, its ONNX export,
its ExecuTorch program, held-out digits and ONNX Runtime's outputs.

Session-scoped: training (cached), export, lowering and the reference run happen once for all target
tests; each test asks for the fixtures it needs, never for another test's output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_source():
    from edgeship.zoo.base import load_zoo

    return load_zoo("digits-cnn")


@pytest.fixture(scope="session")
def digits_onnx(digits_source, tmp_path_factory):
    from edgeship.export.exporter import export

    return export(digits_source, tmp_path_factory.mktemp("digits") / "digits.onnx")


@pytest.fixture(scope="session")
def digits_pte(digits_source, tmp_path_factory):
    """The digits CNN lowered to ExecuTorch (XNNPACK, fp32), with its delegation record."""
    pytest.importorskip("executorch")
    from edgeship.api import convert

    return convert(digits_source, "executorch", tmp_path_factory.mktemp("digits-pte") / "digits.pte")


@pytest.fixture(scope="session")
def digits_test(digits_onnx):
    """All 450 held-out digits as one batch feed, with their labels."""
    from edgeship.core.data import load_data

    ds = load_data("data:digits-test", digits_onnx.io)
    feeds = {"input": np.concatenate([s["input"] for s in ds.samples])}
    return feeds, np.asarray(ds.labels)


@pytest.fixture(scope="session")
def digits_calib(digits_onnx):
    from edgeship.core.data import load_data

    return load_data("data:digits-calib", digits_onnx.io, limit=128)


@pytest.fixture(scope="session")
def ort_logits(digits_onnx, digits_test):
    from edgeship.targets.onnxruntime.runner import OrtRunner

    with OrtRunner(digits_onnx) as r:
        return r.infer(digits_test[0])["logits"]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in points (0-100)."""
    return float((np.asarray(logits).argmax(1) == labels).mean() * 100)


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("converted")
