"""The map against the runtimes that can answer here: ONNX Runtime's per-node providers, OpenVINO's
query_model, a real TFLite conversion, the TFLite Micro build's kernels and ExecuTorch's XNNPACK
delegation. Agreement is measured on nodes, and every disagreement has an explanation."""

from __future__ import annotations

import numpy as np
import pytest
from hwmap_graphs import conv_chain, write
from test_backend_models import MODELS

from edgeship.targets.hwmap.run import map_model


@pytest.fixture
def save(tmp_path):
    return lambda model: write(model, tmp_path)

def _sweep(target: str) -> tuple[int, int, list]:
    compared = agreed = 0
    disagreements = []
    for model in MODELS:
        c = map_model(model, target, crosscheck=True).crosscheck
        assert c is not None, f"{model}: no cross-check"
        compared, agreed = compared + c.compared, agreed + c.agreed
        disagreements += [(model.parent.name, d) for d in c.disagreements]
    return compared, agreed, disagreements


def test_onnxruntime_agrees_on_the_backend_models_and_explains_the_rest():
    compared, agreed, disagreements = _sweep("onnxruntime")
    assert compared > 1800 and agreed / compared >= 0.99
    # the only ones: StringNormalizer needs a C++ locale this machine may lack (then ORT cannot load it)
    for model, d in disagreements:
        assert model.startswith("test_strnorm") and "locale" in d.why, (model, d)


def test_openvino_query_model_agrees_on_the_backend_models():
    pytest.importorskip("openvino")
    compared, agreed, disagreements = _sweep("openvino-cpu")
    assert compared > 1800 and agreed / compared >= 0.99
    assert all("unexplained" not in d.why for _, d in disagreements), disagreements


def test_onnx_functions_run_on_onnxruntime_without_a_kernel(save):
    """HardSwish has no CPU kernel: the map says ONNX Runtime inlines its function body, and it does
    (the session builds and runs; the inlined nodes carry new names, so the node is 'not reported')."""
    hw = map_model(save(conv_chain(["HardSwish"])), "onnxruntime", crosscheck=True)
    assert hw.loads and hw.crosscheck.agreed == hw.crosscheck.compared
    assert "hardswish0" in hw.crosscheck.not_reported


def test_opset_6_operators_do_not_load_on_onnxruntime_and_the_map_says_so():
    model = next(m for m in MODELS if m.parent.name == "test_AvgPool1d")
    hw = map_model(model, "onnxruntime", crosscheck=True)
    assert not hw.loads and "older than" in hw.problems[0].what
    assert hw.crosscheck.agreed == 1 and "does not load" in hw.crosscheck.note


def test_targets_without_a_runtime_here_say_so(save):
    hw = map_model(save(conv_chain(["Relu"])), "coreml-ane", crosscheck=True)
    assert hw.crosscheck is None and any("no runtime here" in n for n in hw.notes)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["onnxruntime", "openvino-cpu", "tflite-micro"])
def test_the_zoo_models_agree_with_the_runtimes(target, tmp_path):
    """≥ 95% of the zoo models' nodes (measured: 100% on each, see README)."""
    pytest.importorskip("openvino")
    from edgeship import api
    from edgeship.export.config import ExportConfig

    for name in ("digits-cnn", "efficientnet-lite0", "minilm"):
        onnx = api.export(f"zoo:{name}", tmp_path / f"{name}.onnx", ExportConfig(parity=False))
        c = map_model(onnx, target, crosscheck=True).crosscheck
        assert c.agreement >= 0.95, (name, c.to_dict())
        assert all("unexplained" not in d.why for d in c.disagreements), (name, c.disagreements)


# Static shapes, as benchmarks/hardware_map.py maps the zoo models (what a device build uses).
STATIC = {"digits-cnn": {"input": (1, 1, 8, 8)}, "efficientnet-lite0": {"input": (1, 3, 224, 224)},
          "minilm": {"input_ids": (1, 32), "attention_mask": (1, 32), "token_type_ids": (1, 32)}}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "static"), [*((n, True) for n in STATIC), ("digits-cnn", False)])
def test_tflite_conversion_makes_the_predicted_builtins(name, static, tmp_path):
    """edgeship convert --target tflite makes the builtins the lowering predicts (measured: 7/7,
    60/60 and 441/441 at static shapes: the layout TRANSPOSE before a CNN's flatten, the RESHAPE a
    fully-connected layer absorbs, MiniLM's elementary-op Erf and tf_keras layer norms; 8/8 for the
    dynamic-batch digits CNN, whose batch the converter keeps dynamic, and with it an identity
    RESHAPE before the second fully-connected layer)."""
    pytest.importorskip("onnx2tf")
    from edgeship import api
    from edgeship.export.config import ExportConfig

    onnx = api.export(f"zoo:{name}", tmp_path / f"{name}.onnx", ExportConfig(parity=False))
    c = map_model(onnx, "tflite-gpu", shapes=STATIC[name] if static else None, crosscheck=True).crosscheck
    assert c is not None and c.compared > 1 and c.agreement >= 0.95, c.to_dict()
    assert all("unexplained" not in d.why for d in c.disagreements), c.disagreements


@pytest.mark.slow
@pytest.mark.parametrize(("clamped", "builtins"), [(False, 1), (True, 5)])
def test_an_l2_norm_over_one_axis_converts_to_the_predicted_builtins(clamped, builtins, tmp_path):
    """onnx2tf 1.28.8 hands tf.norm a NumPy axis for an opset-18 ReduceL2 of a rank-2 tensor, which
    tf.norm refuses (MiniLM's sentence-embedding normalisation); edgeship's converter hands it a
    Python int, so the graph converts. x / ReduceL2(x) becomes one L2_NORMALIZATION; with the norm
    clamped first (F.normalize, MiniLM) it stays SQUARE, SUM, SQRT, MAXIMUM and DIV."""
    pytest.importorskip("onnx2tf")
    from hwmap_graphs import graph_of
    from onnx import helper

    nodes = [helper.make_node("ReduceL2", ["x", "axes"], ["n"], name="norm", keepdims=1)]
    if clamped:
        nodes.append(helper.make_node("Clip", ["n", "eps"], ["c"], name="clamp"))
    nodes.append(helper.make_node("Div", ["x", "c" if clamped else "n"], ["y"], name="normalise"))
    consts = {"axes": np.array([1]), **({"eps": 1e-12} if clamped else {})}
    c = map_model(write(graph_of(nodes, {"x": (1, 16)}, ["y"], consts), tmp_path), "tflite-gpu",
                  crosscheck=True).crosscheck
    assert c is not None and (c.compared, c.agreed) == (builtins, builtins), c.to_dict()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "static"), [("digits-cnn", True), ("minilm", True), ("minilm", False)])
def test_executorch_delegation_matches_the_xnnpack_rules(name, static):
    """Static: the program is lowered at the mapped shapes and every view is delegated. Dynamic:
    lowered as edgeship lowers it (the sequence dynamic), 18 of MiniLM's 60 views are delegated,
    and the map, at those shapes, counts the same (its view rule is the partitioner's)."""
    pytest.importorskip("executorch")
    from edgeship import api

    hw = api.map(f"zoo:{name}", "xnnpack", shapes=STATIC[name] if static else None, crosscheck=True)
    c = hw.crosscheck
    assert c is not None and c.agreement >= 0.95, c.to_dict() if c else hw.notes
    assert all("unexplained" not in d.why for d in c.disagreements), c.disagreements
    if name == "minilm":
        assert ("static shapes" in c.note) == static
