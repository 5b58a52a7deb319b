"""``edgeship export`` through the real CLI entry: exit codes, one-line errors, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeship.cli.main import main
from edgeship.core.artifact import sidecar_path
from models.tiny import tiny_onnx, torch_factory_file


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line naming the problem and the fix
    assert err[0].startswith("edgeship: error: ")
    return err[0]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    tiny_onnx(tmp_path / "good.onnx")
    torch_factory_file(tmp_path)
    (tmp_path / "notes.onnx").write_text("not a model at all\n" * 50)
    good = (tmp_path / "good.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    return tmp_path


def _invalid_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("source", "fragment"), [
    ("missing.onnx", "not found"),
    ("missing.py:build", "not found"),
    ("notes.onnx", "not"),
    ("cut.onnx", "re-export"),
    ("invalid.onnx", "fails the ONNX checker"),
    ("zoo:no-such-model", "unknown zoo model 'no-such-model'"),
    ("net.pt", "pickle checkpoint; it can run arbitrary code when loaded; pass --trust-pickle"),
])
def test_bad_sources_exit_2_with_one_line_and_write_nothing(folder: Path, capsys: pytest.CaptureFixture[str],
                                                            source: str, fragment: str) -> None:
    _invalid_onnx(folder / "invalid.onnx")
    src = torch_factory_file(folder)
    module = _load_module(src)
    torch.save(module, folder / "net.pt")
    before = _files(folder)
    spec = source if source.startswith("zoo:") else str(folder / source)
    code = main(["export", spec, "-o", str(folder / "out.onnx")])
    assert code == 2
    assert fragment in _error_line(capsys)
    assert _files(folder) == before  # no output, no sidecar, no temp file


def test_output_in_missing_folder_exits_2(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(folder)
    code = main(["export", str(folder / "good.onnx"), "-o", str(folder / "nope" / "out.onnx")])
    assert code == 2
    assert "does not exist; create it first" in _error_line(capsys)
    assert _files(folder) == before


def test_trusted_pickle_exports_with_shape(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(_load_module(torch_factory_file(folder)), folder / "net.pt")
    out = folder / "net.onnx"
    code = main(["export", str(folder / "net.pt"), "-o", str(out), "--trust-pickle", "--shape", "x:1,1,8,8",
                 "--dynamic-batch", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["io"]["inputs"][0]["shape"] == ["batch", 1, 8, 8]
    assert report["facts"]["parity"]["outputs"]["output"]["cosine_min"] >= 0.99999
    assert sidecar_path(out).is_file()


def test_parity_failure_exits_1_and_keeps_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "branchy.py").write_text(
        "import torch\n\n\nclass B(torch.nn.Module):\n    def forward(self, x):\n"
        "        return x * 2 if x.sum() > 0 else -x\n\n\ndef build():\n    return B(), (torch.ones(1, 3),)\n")
    np.savez(tmp_path / "neg.npz", x=-np.ones((2, 3), np.float32))
    out = tmp_path / "b.onnx"
    code = main(["export", f"{tmp_path / 'branchy.py'}:build", "-o", str(out), "--data", str(tmp_path / "neg.npz"),
                 "--json"])
    assert code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is False
    assert "parity failed for output 'output'" in captured.err
    assert out.is_file() and sidecar_path(out).is_file()


def test_human_summary_shows_symbolic_dims(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder / "copy.onnx"
    assert main(["export", str(folder / "good.onnx"), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "x: float32[batch,16]" in text
    assert "parity" in text and "pass" in text


def test_config_file_with_flags_on_top(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = folder / "export.yaml"
    config.write_text("kind: export\nopset: 17\nexporter: legacy\nsimplify: false\n")
    out = folder / "net.onnx"
    spec = torch_factory_file(folder)
    assert main(["export", spec, "-o", str(out), "--config", str(config), "--dynamic-batch", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    used = report["provenance"][-1]["config"]
    assert (used["opset"], used["exporter"], used["simplify"], used["dynamic_batch"]) == (17, "legacy", False, True)
    assert report["facts"]["opset"] == 17 and report["facts"]["exporter"] == "legacy"
    assert report["io"]["inputs"][0]["shape"][0] == "batch"


def test_bad_flag_values_exit_2(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = torch_factory_file(folder)
    before = _files(folder)
    assert main(["export", spec, "-o", str(folder / "o.onnx"), "--opset", "5"]) == 2
    assert "opset 5" in _error_line(capsys)
    assert main(["export", spec, "-o", str(folder / "o.onnx"), "--dynamic-axis", "x"]) == 2
    assert "INPUT:AXIS:NAME" in _error_line(capsys)
    assert _files(folder) == before


def test_no_parity_is_recorded_as_skipped(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder / "copy.onnx"
    assert main(["export", str(folder / "good.onnx"), "-o", str(out), "--no-parity", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is None
    assert "skipped" in report["facts"]["parity"]["why"]


def test_command_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import argparse, sys, edgeship.cli.export_cmd as c; "
            "c.register(argparse.ArgumentParser().add_subparsers()); "
            "heavy = [n for n in ('torch', 'onnx', 'onnxruntime', 'tensorflow', 'transformers') if n in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_help_teaches_sources_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    assert "--trust-pickle" in text and "KEEPS the exported file" in text and "edgeship export zoo:" in text


def _load_module(spec: str) -> torch.nn.Module:
    from edgeship.sources.loaders import load_source

    return load_source(spec).module
