"""ONNX Runtime execution providers by name, and which provider ran each node."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.targets.base import get_target
from edgeship.targets.onnxruntime.runner import OrtRunner, available_providers, provider_name


def test_short_names_map_to_providers():
    assert provider_name("cpu") == "CPUExecutionProvider"
    assert provider_name("CUDA") == "CUDAExecutionProvider"
    assert provider_name("OpenVINOExecutionProvider") == "OpenVINOExecutionProvider"
    with pytest.raises(BadInput, match="unknown execution provider"):
        provider_name("tpu")


def test_every_node_reports_its_provider(digits_onnx, digits_test, tmp_path):
    feeds = {"input": digits_test[0]["input"][:4]}
    runner = OrtRunner(digits_onnx, provider="cpu", profile=True, profile_dir=str(tmp_path))
    with runner:
        out = runner.infer(feeds)["logits"]
        nodes = runner.node_providers()
    assert out.shape == (4, 10)
    assert nodes and all(n["provider"] == "CPUExecutionProvider" for n in nodes)
    assert {"Conv", "Gemm"} <= {n["op"] for n in nodes} or "Conv" in {n["op"] for n in nodes}
    assert not list(tmp_path.iterdir())  # the profile file is read and removed


def test_old_constructor_still_works(digits_onnx, digits_test, ort_logits):
    r = OrtRunner(digits_onnx, 1, "basic", ["CPUExecutionProvider"], False)
    with r:
        assert np.abs(r.infer(digits_test[0])["logits"] - ort_logits).max() <= 1e-4


def test_absent_provider_is_not_runnable_here(digits_onnx):
    target = get_target("onnxruntime-cuda")
    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("CUDA provider present")
    assert not target.availability().runs_here
    with pytest.raises(NotRunnableHere, match="CUDAExecutionProvider"):
        target.runner(digits_onnx)
    with pytest.raises(BadInput, match="not available here"), OrtRunner(digits_onnx, provider="cuda") as r:
        r.infer({})


def test_node_providers_needs_profiling(digits_onnx):
    with pytest.raises(BadInput, match="profile=True"):
        OrtRunner(digits_onnx).node_providers()
