"""export(): real exports of small models, checked by running the ONNX files in ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeship.core.artifact import Model, sidecar_path
from edgeship.core.errors import BadInput, GateFailed
from edgeship.export.config import ExportConfig, parse_dynamic_axis
from edgeship.export.exporter import export
from edgeship.sources.loaders import load_source
from models.factories import factories_file, tiny_hf_folder
from models.tiny import tiny_onnx, torch_factory_file


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Files in ``folder`` other than ``keep``: temp files of an atomic write would show up here."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def _ort(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    spec = torch_factory_file(folder)
    return export(spec, folder / "net.onnx", ExportConfig(dynamic_batch=True)), folder


@pytest.fixture(scope="module")
def factories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories_file(tmp_path_factory.mktemp("factories"))


def test_export_writes_one_file_with_sidecar_and_parity(tiny_export: tuple[Model, Path]) -> None:
    model, folder = tiny_export
    assert model.path.is_file() and not Path(str(model.path) + ".data").exists()
    assert _leftovers(folder, {"net.py", "net.onnx", "net.onnx.edgeship.json", "__pycache__"}) == []
    meta = json.loads(sidecar_path(model.path).read_text())
    facts = meta["facts"]
    assert facts["exporter"] == "dynamo" and facts["exporter_fallback"] is None
    assert facts["opset"] == 18
    assert facts["torch"] == torch.__version__
    parity = facts["parity"]
    assert parity["passed"] is True and parity["samples"] == ExportConfig().parity_samples
    out = parity["outputs"]["output"]
    assert out["cosine_min"] >= 0.99999 and out["rel_err_max"] <= 1e-4 and out["top1_agreement"] == 1.0
    assert meta["provenance"][-1]["stage"] == "export"
    assert meta["provenance"][-1]["config"]["kind"] == "export"
    assert Model.open(model.path).facts["parity"]["passed"] is True  # the sidecar describes this very file


def test_dynamic_batch_is_in_the_io_spec_and_runs(tiny_export: tuple[Model, Path]) -> None:
    model, folder = tiny_export
    assert model.io.inputs[0].shape == ("batch", 1, 8, 8)
    assert model.io.outputs[0].shape[0] == "batch"
    src = load_source(str(folder / "net.py") + ":build")
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    got = _ort(model.path, {"x": x})[0]
    np.testing.assert_allclose(got, src.forward_numpy({"x": x})["output"], rtol=1e-4, atol=1e-5)


def test_dynamic_axes_by_name_with_legacy_exporter(factories: Path, tmp_path: Path) -> None:
    config = ExportConfig(exporter="legacy", dynamic_batch=True, simplify=False,
                          dynamic_axes=("image:2:height", "image:3:width"))
    model = export(f"{factories}:fully_conv", tmp_path / "conv.onnx", config)
    assert model.facts["exporter"] == "legacy"
    assert model.io.input("image").shape == ("batch", 3, "height", "width")
    assert model.io.input("scale").shape == ("batch", 1)
    src = load_source(f"{factories}:fully_conv")
    feeds = {"image": np.random.default_rng(2).standard_normal((2, 3, 13, 21)).astype(np.float32),
             "scale": np.full((2, 1), 0.5, np.float32)}
    np.testing.assert_allclose(_ort(model.path, feeds)[0], src.forward_numpy(feeds)["output"], rtol=1e-4, atol=1e-5)


def test_clashing_and_repeated_output_names_are_made_unique(factories: Path, tmp_path: Path) -> None:
    model = export(f"{factories}:clash", tmp_path / "clash.onnx")
    assert model.io.output_names == ["relu", "relu_1"]
    onnx.checker.check_model(onnx.load(str(model.path)))
    assert model.facts["parity"]["passed"] is True


def test_dynamo_failure_falls_back_and_parity_failure_keeps_the_file(factories: Path, tmp_path: Path) -> None:
    # Negative inputs take the branch the tracer did not see (it traced with ones): a real mismatch.
    data = tmp_path / "negative.npz"
    np.savez(data, x=-np.ones((3, 3), np.float32))
    out = tmp_path / "branchy.onnx"
    with pytest.raises(GateFailed) as info:
        export(f"{factories}:branchy", out, data=str(data))
    message = str(info.value)
    assert "parity failed for output 'output'" in message and "kept" in message
    assert out.is_file()  # a valid file, kept for inspection
    facts = json.loads(sidecar_path(out).read_text())["facts"]
    assert facts["exporter"] == "legacy"
    assert facts["exporter_fallback"]["from"] == "dynamo"
    assert "data-dependent" in facts["exporter_fallback"]["why"]
    assert facts["parity"]["passed"] is False
    assert facts["parity"]["worst_output"] == "output"
    assert facts["parity"]["outputs"]["output"]["cosine_min"] < 0


def test_dynamo_only_reports_the_failure_and_writes_nothing(factories: Path, tmp_path: Path) -> None:
    out = tmp_path / "branchy.onnx"
    with pytest.raises(BadInput, match=r"export failed .*try --exporter legacy"):
        export(f"{factories}:branchy", out, ExportConfig(exporter="dynamo"))
    assert _leftovers(tmp_path, set()) == []


def test_onnx_source_gets_dynamic_batch_and_parity_against_itself(tmp_path: Path) -> None:
    src = tiny_onnx(tmp_path / "mlp.onnx", dynamic_batch=False)
    model = export(str(src), tmp_path / "mlp_dyn.onnx", ExportConfig(dynamic_batch=True))
    assert model.io.inputs[0].shape == ("batch", 16)
    assert model.facts["parity"]["passed"] is True
    assert model.facts["parity"]["reference"].startswith("onnxruntime")
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    # a batch of 4 through the new file equals the original (batch 1) model row by row
    rows = np.concatenate([_ort(src, {"x": x[i:i + 1]})[0] for i in range(4)])
    np.testing.assert_allclose(_ort(model.path, {"x": x})[0], rows, rtol=1e-5, atol=1e-6)


def test_hf_folder_export_accepts_two_sequence_lengths(tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "bert")
    model = export(str(folder), tmp_path / "bert.onnx")
    assert model.io.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    for spec in model.io.inputs:
        assert spec.shape == ("batch", "sequence")
    assert model.io.output_names == ["last_hidden_state"]
    assert model.facts["parity"]["passed"] is True
    src = load_source(str(folder))
    tok = src.extra["tokenizer"]
    for texts in (["ok"], ["the quick brown fox jumps over the lazy dog .", "how long does it run ?"]):
        enc = tok(texts, return_tensors="np", padding=True)
        feeds = {k: enc[k].astype(np.int64) for k in model.io.input_names}
        got = _ort(model.path, feeds)[0]
        want = src.forward_numpy(feeds)["last_hidden_state"]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bad_output_paths_write_nothing(tmp_path: Path) -> None:
    spec = torch_factory_file(tmp_path)
    with pytest.raises(BadInput, match=r"does not exist; create it first"):
        export(spec, tmp_path / "missing" / "net.onnx")
    with pytest.raises(BadInput, match=r"must end in \.onnx"):
        export(spec, tmp_path / "net.tflite")
    with pytest.raises(BadInput, match=r"has no input 'y'"):
        export(spec, tmp_path / "net.onnx", ExportConfig(dynamic_axes=("y:0:batch",)))
    assert _leftovers(tmp_path, {"net.py", "__pycache__"}) == []


def test_config_round_trip_and_validation() -> None:
    config = ExportConfig(opset=17, dynamic_batch=True, dynamic_axes=("input_ids:1:sequence",), exporter="legacy")
    assert ExportConfig.from_json(config.to_json()) == config
    assert ExportConfig.from_yaml(config.to_yaml()) == config
    assert parse_dynamic_axis("x:2") == ("x", 2, "x_dim2")
    for bad in ({"opset": 99}, {"exporter": "magic"}, {"dynamic_axes": ("x-1",)}, {"parity_samples": 0},
                {"parity_gates": ("cosine>=1",)}):
        with pytest.raises(BadInput):
            ExportConfig(**bad)
