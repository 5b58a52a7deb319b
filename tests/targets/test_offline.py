"""Offline for real: with the network blocked for the process (and every process it starts), a Hugging
Face folder loads and exports, and conversion to every target that runs here succeeds at every
precision it offers — onnx2tf included, which otherwise downloads sample images for static NHWC image
inputs (at every precision, calibration data given or not). Any connection attempt fails the test."""

import json
import sys

import numpy as np
import pytest

from models import corpus
from models.netblock import run_blocked

SCRIPT = r'''
import json, sys
from pathlib import Path

from edgeship.core.logs import configure
configure()
from edgeship.api import convert, export
from edgeship.targets.base import all_targets

out, factory, hf, calib = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
results = {}
onnx = export(factory, out / "net.onnx")  # torch -> ONNX, static [1, 3, 32, 32]: onnx2tf's download case
results["export:factory"] = "ok"
export(hf, out / "hf.onnx")  # transformers + Optimum, from the folder only
results["export:huggingface"] = "ok"
for target in all_targets():
    if target.config_class is None or not target.availability().runs_here:
        continue
    src = factory if target.formats == ("torch",) else str(onnx.path)
    for precision in target.precisions:
        if precision in ("bf16", "palette4"):
            continue
        key = f"{target.name}:{precision}"
        try:
            convert(src, target.name, out / f"{target.name}-{precision}{target.suffix}", precision=precision,
                    calib=calib if precision.startswith("int8") else None)
            results[key] = "ok"
        except Exception as exc:
            results[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
print("RESULTS " + json.dumps(results))
'''

FACTORY = '''
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    return {"module": net, "example_inputs": (torch.randn(1, 3, 32, 32),), "input_names": ["x"],
            "output_names": ["logits"]}
'''


@pytest.mark.slow
def test_conversion_to_every_runnable_target_with_the_network_blocked(tmp_path):
    (tmp_path / "net.py").write_text(FACTORY)
    hf = corpus.hf_bert_text_classification(tmp_path / "bert")[0]
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((16, 1, 3, 32, 32)).astype(np.float32))
    (tmp_path / "run.py").write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    proc, attempts = run_blocked(["python", str(tmp_path / "run.py"), str(out), f"{tmp_path / 'net.py'}:build", hf,
                                  str(tmp_path / "calib.npz")], tmp_path / "netblock")
    assert attempts == "", f"network connection attempted:\n{attempts[:4000]}"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")), None)
    assert line is not None, proc.stderr[-3000:]
    results = json.loads(line.removeprefix("RESULTS "))
    failed = {k: v for k, v in results.items() if v != "ok"}
    assert not failed, failed
    for expected in ("tflite:fp32", "tflite:int8", "openvino:int8", "executorch:fp32", "tflite-micro:int8"):
        assert expected in results
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_the_block_itself_catches_a_download(tmp_path):
    """The blocker is real: urllib (what requests and huggingface_hub use underneath) is refused."""
    code = ("import urllib.request\ntry:\n    urllib.request.urlopen('https://github.com', timeout=3)\n"
            "except OSError as e:\n    print('refused', e)\n")
    proc, attempts = run_blocked([sys.executable, "-c", code], tmp_path / "netblock", timeout=60)
    assert "refused" in proc.stdout and "getaddrinfo 'github.com'" in attempts
