"""The convert API and the `edgeship convert` / `edgeship targets` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeship.api import convert
from edgeship.cli.main import main
from edgeship.core.errors import BadInput


def test_targets_json_lists_every_target_with_reasons(capsys):
    assert main(["targets", "--json"]) == 0
    rows = {r["target"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"onnxruntime", "openvino", "tflite", "tflite-micro", "executorch", "coreml", "tensorrt"} <= set(rows)
    assert rows["coreml"]["runs_here"] is (sys.platform == "darwin")
    if sys.platform != "darwin":
        assert rows["coreml"]["why_not"] == "Core ML prediction needs macOS"
    assert rows["executorch"]["takes"] == ["PyTorch source"]
    assert "int8" in rows["tflite"]["precisions"] and rows["tflite-micro"]["precisions"] == ["int8"]
    assert rows["tensorrt"]["runs_here"] is False or rows["tensorrt"]["why_not"] == ""


def test_targets_table(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "tflite-micro" in out and "runs here" in out


def test_cli_convert_openvino(digits_onnx, tmp_path, capsys):
    out = tmp_path / "d.xml"
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "openvino" and summary["precision"] == "fp32" and out.is_file()
    assert summary["facts"]["inference_precision"] == "f32"


def test_openvino_output_is_ir_whatever_its_name(digits_onnx, tmp_path):
    m = convert(digits_onnx, "openvino", tmp_path / "fp32.openvino.openvino")  # a pipeline naming by format
    assert m.path == tmp_path / "fp32.openvino.xml" and m.path.with_suffix(".bin").is_file()


def test_cli_bad_precision_and_option_exit_2(digits_onnx, tmp_path, capsys):
    out = str(tmp_path / "d.xml")
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "-p", "int4", "-o", out]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "--set", "colour=red", "-o", out]) == 2
    err = capsys.readouterr().err
    assert "no option(s) colour" in err and "calib_samples" in err
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "--set", "oops", "-o", out]) == 2


def test_cli_select_chooses_the_openvino_int8_settings_on_its_data(digits_onnx, tmp_path, capsys):
    """--select: each NNCF setting is judged on the selection data and its probes under the gates
    (tightened by the margin); the verdicts are in the facts, the one kept is the one named."""
    out = tmp_path / "d.xml"
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "-p", "int8", "--calib",
                 "data:digits-calib", "--select", "data:digits-test", "--gate", "top1_agreement>=0.95",
                 "-o", str(out), "--json"]) == 0
    search = json.loads(capsys.readouterr().out)["facts"]["nncf"]["search"]
    assert len(search["candidates"]) == 3
    assert all(c["selection"]["rows"] == 450 and c["probes"]["rows"] > 0 for c in search["candidates"])
    assert all(">=0.9625" in c["selection"]["why"] for c in search["candidates"])  # 0.95 + margin
    chosen = [c for c in search["candidates"] if c["chosen"]]
    assert [c["label"] for c in chosen] == [search["chosen"]]
    # int8-weight: the run-time activation groups, coarsest first, the first that passes kept
    assert main(["convert", str(digits_onnx.path), "--target", "openvino", "-p", "int8-weight",
                 "--select", "data:digits-test", "-o", str(tmp_path / "w.xml")]) == 0
    assert "activation groups: chose" in capsys.readouterr().out
    # without --select nothing is searched
    plain = convert(digits_onnx, "openvino", tmp_path / "p.xml", precision="int8", calib="data:digits-calib")
    assert "search" not in plain.facts["nncf"]


def test_select_where_nothing_is_searched_exits_2(digits_onnx, tmp_path, capsys):
    out = str(tmp_path / "x")
    for argv, said in (
            (["--target", "tflite", "--select", "data:digits-test"], "target 'tflite' has none to search"),
            (["--target", "openvino", "--select", "data:digits-test"], "precision 'fp32' has none to choose"),
            (["--target", "openvino", "--gate", "cosine_min>=0.9"], "give the data to judge on with --select")):
        assert main(["convert", str(digits_onnx.path), *argv, "-o", out]) == 2, argv
        assert said in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_failed_conversion_keeps_the_good_file(digits_onnx, tmp_path):
    out = tmp_path / "d.xml"
    good = convert(digits_onnx, "openvino", out)
    before = out.read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(digits_onnx.path.read_bytes()[:200])  # truncated
    with pytest.raises(BadInput):
        convert(broken, "openvino", out)
    assert out.read_bytes() == before and good.path == out


def test_wrong_input_format_names_what_the_target_takes(tmp_path, digits_onnx):
    from edgeship.core.artifact import Model

    pte = tmp_path / "fake.pte"
    pte.write_bytes(b"x")
    with pytest.raises(BadInput, match=r"converts from a \.onnx file or a PyTorch source"):
        convert(Model(pte, "pte", digits_onnx.io), "tflite", tmp_path / "x.tflite")
    with pytest.raises(BadInput, match="unknown target"):
        convert(digits_onnx, "edgetpu", tmp_path / "x.tflite")


def test_help_imports_no_backend():
    code = ("import sys; from edgeship.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'tensorflow', 'openvino', 'executorch', 'coremltools', 'onnx2tf') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
