"""The prune / distill / qat commands: exit codes, JSON output and resume through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from compress_models import one_torch_thread

from edgeship.cli.main import main


def test_help_is_fast_and_teaches():
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "edgeship", "prune", "--help"], capture_output=True, text=True,
                         check=True)
    assert time.perf_counter() - t0 < 20  # no torch import: seconds even on a loaded machine
    assert "--ratio" in out.stdout and "examples:" in out.stdout and "edgeship bench" in out.stdout
    for cmd in ("distill", "qat"):
        text = subprocess.run([sys.executable, "-m", "edgeship", cmd, "--help"], capture_output=True, text=True,
                              check=True).stdout
        assert "examples:" in text


@pytest.mark.parametrize("argv, needle", [
    (["prune", "zoo:digits-cnn", "--ratio", "1.5"], "out of range"),
    (["prune", "zoo:digits-cnn", "--ratio", "0.5", "--finetune-epochs", "1"], "needs training data"),
    (["qat", "zoo:digits-cnn", "--data", "data:digits-calib", "--bits", "8", "--alpha", "2"], "between 0 and 1"),
    (["distill", "--teacher", "zoo:digits-cnn", "--student", "layers=2", "--data", "data:digits-calib"],
     "no stack of repeated blocks"),
    (["prune", "model.onnx", "--ratio", "0.5"], "PyTorch model"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, tmp_path, capsys):
    code = main([*argv, "-o", str(tmp_path / "out.onnx"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_prune_json_and_a_rerun_resumes_from_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "p.onnx"
    with one_torch_thread():
        code = main(["prune", "zoo:digits-cnn", "--ratio", "0.5", "--finetune-epochs", "1", "--data",
                     "data:digits-train", "--max-steps", "5", "-o", str(out), "--json", "--quiet"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(out) and out.is_file()
    assert report["finetune"]["steps"] == 5 and report["params"]["ratio"] < 0.5
    # a second run with the same config finds the finished checkpoint and does not train again
    with one_torch_thread():
        main(["prune", "zoo:digits-cnn", "--ratio", "0.5", "--finetune-epochs", "1", "--data", "data:digits-train",
              "--max-steps", "5", "-o", str(out), "--json", "--quiet"])
    again = json.loads(capsys.readouterr().out)
    assert again["finetune"]["resumed_from_step"] == 5 and again["finetune"]["steps"] == 5
    # --fresh starts over
    with one_torch_thread():
        main(["prune", "zoo:digits-cnn", "--ratio", "0.5", "--finetune-epochs", "1", "--data", "data:digits-train",
              "--max-steps", "5", "-o", str(out), "--json", "--quiet", "--fresh"])
    assert json.loads(capsys.readouterr().out)["finetune"]["resumed_from_step"] == 0


def test_human_summary(tmp_path, capsys):
    with one_torch_thread():
        code = main(["prune", "zoo:digits-cnn", "--ratio", "0.8", "--unstructured", "-o", str(tmp_path / "s.onnx"),
                     "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "weight sparsity 80%" in text and "(100%); MACs are not time" in text  # same dense MACs
    assert "held-out data:digits-test: accuracy" in text
