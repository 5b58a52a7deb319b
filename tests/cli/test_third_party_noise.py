"""Quiet by default: the banners, notes and progress bars of the libraries edgeship drives stay off our
output (TensorFlow/absl/oneDNN, torchao's CUDA-only notes, torch's deprecation chatter, LiteRT's
delegate line); ``--verbose`` lets them through."""

import os
import subprocess
import sys

import pytest

from edgeship.core import logs
from models import corpus

NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "Failed to load", "Enum subclass",
         "Created TensorFlow Lite XNNPACK delegate", "FutureWarning", "DeprecationWarning", "Traceback")


@pytest.mark.slow
def test_a_hugging_face_folder_to_tflite_prints_only_our_lines(tmp_path):
    folder = corpus.hf_vit(tmp_path / "vit")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "EDGESHIP_VERBOSE", "PYTHONWARNINGS"))}
    edgeship = [sys.executable, "-m", "edgeship"]
    proc = subprocess.run([*edgeship, "optimize", "--model", folder, "--variants", "fp32", "--targets",
                           "onnxruntime,tflite", "--limit", "4", "--out", str(tmp_path / "run"), "--executor",
                           "sequential"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noisy = [ln for ln in (proc.stdout + proc.stderr).splitlines() if any(n in ln for n in NOISE)]
    assert not noisy, noisy


def test_configure_sets_the_quiet_environment_and_verbose_keeps_it(monkeypatch):
    for key in (*logs.QUIET_ENV, "EDGESHIP_VERBOSE"):
        monkeypatch.delenv(key, raising=False)
    logs.configure(verbose=True)
    assert logs.is_verbose() and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    with logs.third_party_output() as box:  # verbose: nothing captured
        print("shown")
    assert box == []
    monkeypatch.delenv("EDGESHIP_VERBOSE")
    logs.configure()
    assert not logs.is_verbose() and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    with logs.third_party_output() as box:
        os.write(1, b"a C library's banner\n")
    assert box == ["a C library's banner\n"]
