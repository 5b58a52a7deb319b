"""One resolver for every spec: objects pass through, strings go to their registered kind."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.golden import save_golden
from edgeship.sources.loaders import SOURCE_KINDS
from edgeship.sources.resolve import resolve, resolve_torch
from edgeship.sources.subject import precision_of, resolve_subject
from edgeship.sources.torch_source import TorchSource
from models.tiny import tiny_onnx


def test_every_spec_kind_is_registered_including_the_zoo_plugin():
    # zoo: is registered by the zoo package through the edgeship.sources entry point
    assert {"zoo", "factory", "onnx", "pt2", "huggingface", "pickle", "model"} <= set(SOURCE_KINDS.names())


def test_resolve_passes_objects_through_and_opens_files(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    model = resolve(str(path))
    assert isinstance(model, Model) and model.io.input_names == ["x"]
    assert resolve(model) is model
    src = resolve("zoo:digits-cnn")
    assert isinstance(src, TorchSource) and resolve(src) is src


def test_resolve_torch_refuses_model_files_before_reading_them(tmp_path):
    with pytest.raises(BadInput, match="is a onnx file; compression works on the PyTorch model"):
        resolve_torch(str(tmp_path / "missing.onnx"), what="compression")
    with pytest.raises(BadInput, match="unknown zoo model"):
        resolve_torch("zoo:nope")


def test_strict_onnx_needs_the_checker_but_a_candidate_only_needs_to_parse(tmp_path):
    import onnx

    path = tiny_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    proto.graph.node.reverse()  # parses, but the nodes are no longer in topological order: the checker refuses
    bad = tmp_path / "unsorted.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(BadInput, match="fails the ONNX checker"):
        resolve(str(bad))
    assert isinstance(resolve(str(bad), strict=False), Model)


def test_subjects_of_each_kind(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    subj = resolve_subject(str(path), runtime="onnxruntime")
    assert subj.model is not None and subj.runtime == "onnxruntime" and subj.precision == "fp32"
    torch_subj = resolve_subject("zoo:digits-cnn")
    assert torch_subj.source is not None and torch_subj.task == "classification"
    x = np.ones((1, 16), np.float32)
    golden = save_golden(tmp_path / "g.npz", [{"x": x}], [{"logits": np.zeros((1, 4), np.float32)}])
    g = resolve_subject(str(golden))
    assert g.golden is not None and g.io.input_names == ["x"] and g.io.output_names == ["logits"]


def test_precision_comes_from_facts_then_provenance(tmp_path):
    model = Model.open(tiny_onnx(tmp_path / "m.onnx"))
    assert precision_of(model) == "fp32"
    derived = model.derive(tmp_path / "q.onnx", "quantize", {"precision": "int8"})
    assert precision_of(derived) == "int8"
    assert precision_of(derived.with_facts(precision="fp16")) == "fp16"
