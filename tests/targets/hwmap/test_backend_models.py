"""Every model of the ONNX backend test data that ships in the onnx wheel (pytorch-converted,
pytorch-operator, simple, light: single operators to ResNet50, Inception and DenseNet) maps on
ONNX Runtime CPU, OpenVINO CPU and the TFLite GPU delegate: exit 0 or 1, never a traceback, and
the rules decide every op (none is an op the rules have never heard of)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgeship.cli.main import main
from edgeship.targets.hwmap.engine import build_map
from edgeship.targets.hwmap.graph import read_onnx
from edgeship.targets.hwmap.lowering import known
from edgeship.targets.hwmap.profiles import map_target

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted([*DATA.glob("pytorch-converted/*/model.onnx"), *DATA.glob("pytorch-operator/*/model.onnx"),
                 *DATA.glob("simple/*/model.onnx"), *DATA.glob("light/*.onnx")])
TARGETS = ("onnxruntime", "openvino-cpu", "tflite-gpu")


def test_the_wheel_ships_the_models():
    assert len(MODELS) > 140
    assert {"light_resnet50.onnx", "light_inception_v2.onnx", "light_densenet121.onnx"} <= {m.name for m in MODELS}


@pytest.mark.parametrize("target", TARGETS)
def test_map_runs_on_every_backend_model(target, capsys):
    codes = {}
    for model in MODELS:
        codes[model] = main(["map", str(model), "--target", target, "--json"])
        err = capsys.readouterr().err
        assert codes[model] in (0, 1), f"{model}: exit {codes[model]}: {err.strip()[:300]}"
        assert "Traceback" not in err
    # measured: 113 load on ONNX Runtime (opset-6 operators have no kernel; test_crosscheck.py shows the
    # runtime refuses them too), 141 on OpenVINO, 133 on the TFLite GPU delegate's side
    loads = sum(1 for c in codes.values() if c == 0)
    assert loads >= {"onnxruntime": 110, "openvino-cpu": 138, "tflite-gpu": 130}[target]


@pytest.mark.parametrize("target", TARGETS)
def test_the_rules_decide_every_op_of_the_backend_models(target):
    profile = map_target(target)
    unknown = set()
    for model in MODELS:
        graph = read_onnx(model)
        for node in graph.live_nodes:
            for unit in profile.units:
                if unit.rules.vocabulary == "tflite":
                    if not known(node.op):
                        unknown.add((unit.rules.name, node.op))
                # the last unit must know the op; the earlier ones may refuse what they do not know
                elif unit is profile.units[-1] and not (unit.rules.knows(node.op) or unit.rules.accepts_unlisted):
                    unknown.add((unit.rules.name, node.op))
        build_map(graph, profile)
    assert not unknown, sorted(unknown)
