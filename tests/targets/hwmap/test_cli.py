"""``edgeship map``: listing, text and JSON output, the HTML view, gates and exit codes."""

from __future__ import annotations

import json
import re

import pytest
from hwmap_graphs import conv_chain, write

from edgeship.cli.main import main


@pytest.fixture
def save(tmp_path):
    return lambda model: write(model, tmp_path)

def test_list_targets_names_every_target_and_its_rules(capsys):
    assert main(["map", "--list-targets"]) == 0
    out = capsys.readouterr().out
    for name in ("tflite-gpu", "nnapi", "qnn-htp", "edgetpu", "coreml-ane", "tensorrt", "openvino-npu", "xnnpack",
                 "tflite-micro", "onnxruntime-qnn"):
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), name
    assert "TPU (edgetpu v2) → CPU (tflite-cpu v1)" in out


def test_map_prints_splits_with_suggestions_and_exits_0_when_it_loads(save, capsys):
    path = save(conv_chain(["Relu", "HardSwish", "Relu"], int8=True))
    assert main(["map", str(path), "--target", "edgetpu"]) == 0
    out = capsys.readouterr().out
    assert "1 × HardSwish → CPU: HARD_SWISH is not supported on the Edge TPU" in out
    assert "replace it with ReLU6" in out and "pre-flight: loads on edgetpu" in out


def test_json_has_the_summary_partitions_and_citations(save, capsys):
    path = save(conv_chain(["Relu", "HardSwish", "Relu"]))
    assert main(["map", str(path), "-t", "nnapi", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["partitions"] == 3 and doc["summary"]["fallback_nodes"] == 1
    assert doc["boundaries"][0]["bytes"] == 1024 and doc["boundaries"][0]["estimated_us"] > 100
    assert "assumed" in doc["cost_basis"]
    assert any("NNAPI-ExecutionProvider.md" in v for v in doc["sources"].values())
    hardswish = next(n for n in doc["nodes"] if n["op"] == "HardSwish")
    assert hardswish["unit"] == "CPU" and hardswish["cite"].startswith("nnapi v1/")


@pytest.mark.parametrize("gate,code", [([], 0), (["--max-partitions", "3"], 0), (["--max-partitions", "2"], 1),
                                       (["--require-full-offload"], 1), (["--max-fallback-nodes", "0"], 1),
                                       (["--max-fallback-nodes", "1"], 0)])
def test_gates_exit_1_when_they_fail(save, capsys, gate, code):
    path = save(conv_chain(["Relu", "HardSwish", "Relu"]))
    assert main(["map", str(path), "-t", "nnapi", *gate]) == code
    if code:
        assert "gate failed:" in capsys.readouterr().out


def test_a_model_that_does_not_load_exits_1(save, capsys):
    path = save(conv_chain(["Relu"], batch="N"))
    assert main(["map", str(path), "-t", "openvino-npu"]) == 1
    out = capsys.readouterr().out
    assert "needs static shapes" in out and "does not load" in out
    assert main(["map", str(path), "-t", "openvino-npu", "--shape", "x:1,4,8,8"]) == 0


def test_device_runtime_too_old_for_the_opset(save, capsys):
    path = save(conv_chain(["Relu"], opset=18))
    assert main(["map", str(path), "-t", "onnxruntime", "--device-runtime", "1.12"]) == 1
    assert "implements opsets up to 17" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["map", "x.onnx"], "give a model and --target"),
    (["map", "MISSING.onnx", "-t", "edgetpu"], "not found"),
    (["map", "MODEL", "-t", "no-such-target"], "no hardware-map target 'no-such-target'; known: tflite, tflite-gpu"),
    (["map", "MODEL", "-t", "onnxruntime", "--memory-budget", "0"], "positive number of bytes"),
    (["map", "MODEL", "-t", "onnxruntime", "--shape", "y:1,2"], "--shape names input 'y'"),
])
def test_bad_input_is_one_line_and_exit_2(save, capsys, argv, message):
    path = save(conv_chain(["Relu"]))
    argv = [str(path) if a == "MODEL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_html_view_is_self_contained(save, tmp_path, capsys):
    path = save(conv_chain(["Relu", "HardSwish", "Relu"]))
    out = tmp_path / "map.html"
    assert main(["map", str(path), "-t", "coreml-ane", "--html", str(out)]) == 0
    page = out.read_text()
    assert "<svg" in page and "partition 0" in page and "HardSwish" in page
    # nothing is fetched when it is opened: no scripts, no external resources (cited URLs are text)
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", page)
