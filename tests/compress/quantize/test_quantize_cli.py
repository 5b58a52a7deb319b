"""``edgeship quantize``: flags build the same configs as the API; errors are one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgeship.cli.main import main
from edgeship.compress.quantize.configs import Int8StaticConfig
from edgeship.compress.quantize.graph import run_outputs
from edgeship.core.artifact import Model


@pytest.mark.parametrize(("method", "extra", "op"), [
    ("fp16", [], "Cast"),
    ("int8-dynamic", ["--no-per-channel"], "MatMulInteger"),
    ("int8-static", ["--calibration", "percentile", "--percentile", "99.9", "--pad-policy", "pad"], "QuantizeLinear"),
    ("int4-weight", ["--block-size", "16", "--bits", "8", "--accuracy-level", "4"], "MatMulNBits"),
])
def test_each_method_from_the_command_line(mlp: Path, mlp_calib: Path, tmp_path: Path, method: str, extra: list[str],
                                           op: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{method}.onnx"
    code = main(["quantize", str(mlp), "--method", method, "--calib", str(mlp_calib), "-o", str(out), "--json",
                 *extra])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["facts"]["method"] == method
    cfg = Model.open(out).provenance[-1].config
    assert cfg["kind"] == method
    assert op in {n.op_type for n in onnx.load(str(out)).graph.node}
    assert run_outputs(out, [{"x": __import__("numpy").ones((2, 16), "float32")}])[0]["logits"].shape == (2, 4)


def test_config_file_and_flags_override_it(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "q.yaml"
    cfg.write_text(Int8StaticConfig(calibration="entropy", per_channel=False).to_yaml())
    out = tmp_path / "o.onnx"
    assert main(["quantize", str(mlp), "--config", str(cfg), "--per-channel", "--calib", str(mlp_calib),
                 "-o", str(out)]) == 0
    used = Model.open(out).provenance[-1].config
    assert used["calibration"] == "entropy" and used["per_channel"] is True


@pytest.mark.parametrize(("args", "words"), [
    (["--method", "int8-dynamic", "--block-size", "32"], "--block-size does not apply to --method int8-dynamic"),
    ([], "give --method"),
    (["--method", "int8-static"], "needs calibration data"),
    (["--method", "int4-weight", "--block-size", "24"], "block_size"),
    (["--method", "mixed", "--calib", "data:synthetic", "--gate", "cosine_min=0.9"], "gate"),
])
def test_usage_errors_exit_2_with_one_line(mlp: Path, tmp_path: Path, args: list[str], words: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["quantize", str(mlp), "-o", str(tmp_path / "o.onnx"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.onnx").exists()


def test_missing_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quantize", str(tmp_path / "nope.onnx"), "--method", "fp16", "-o", str(tmp_path / "o.onnx")]) == 2
    assert "not found" in capsys.readouterr().err


def test_help_is_fast_and_teaches() -> None:
    code = "import sys, edgeship.cli.quantize_cmd; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('onnx', 'onnxruntime', 'torch', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    text = subprocess.run([sys.executable, "-m", "edgeship", "quantize", "--help"], capture_output=True, text=True,
                          check=True).stdout
    assert "examples:" in text and "--method mixed" in text and "int4-weight" in text
