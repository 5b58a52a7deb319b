"""The variants ``edgeship optimize`` builds from the quantizers, through the pipeline's own context."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.artifact import Model
from edgeship.core.data import load_data
from edgeship.pipeline.variants import VariantContext, get_variant


@pytest.mark.parametrize(("name", "precision"), [("fp16", "fp16"), ("int8-dynamic", "int8"), ("int8-static", "int8"),
                                                 ("int4-weight", "int4"), ("mixed", "mixed")])
def test_optimize_builds_each_quantized_variant(mlp: Path, mlp_calib: Path, mlp_test: Path, tmp_path: Path,
                                               name: str, precision: str) -> None:
    fp32 = Model.open(mlp)
    ctx = VariantContext(fp32=fp32, source=None, out=tmp_path / f"{name}.onnx",
                         calib=lambda: load_data(mlp_calib, fp32.io), eval=lambda: load_data(mlp_test, fp32.io),
                         golden=tmp_path / "golden.npz", gates=("cosine_min>=0.95",), task="other")
    variant = get_variant(name)
    model = variant.build(ctx)
    assert variant.precision == precision
    assert model.path == tmp_path / f"{name}.onnx" and model.provenance[-1].config["kind"] == name
    if name == "mixed":
        assert model.facts["gate"]["gates"] == ["cosine_min>=0.95"]


def _conv_net(path: Path) -> Path:
    """Two 3×3 convolutions and a small linear head: most weights in Conv layers."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.2, n)
             for n, s in (("w1", (16, 3, 3, 3)), ("w2", (32, 16, 3, 3)), ("fc", (32, 4)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["logits"], name="head")]
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_int8_dynamic_is_skipped_for_conv_heavy_graphs_with_the_reason(mlp: Path, tmp_path: Path) -> None:
    import onnx

    from edgeship.compress.quantize.graph import conv_heavy
    from edgeship.core.errors import NotApplicable

    conv = Model.open(_conv_net(tmp_path / "conv.onnx"))
    why = conv_heavy(onnx.load(str(conv.path)))
    assert "2 Conv layers hold 98% of the weights" in why and "int8-static" in why
    assert conv_heavy(onnx.load(str(mlp))) == ""  # MatMuls only
    ctx = VariantContext(fp32=conv, source=None, out=tmp_path / "dyn.onnx", calib=lambda: None, eval=lambda: None,
                         golden=tmp_path / "golden.npz", gates=(), task="classification")
    with pytest.raises(NotApplicable, match="int8-dynamic skipped: 2 Conv layers"):
        get_variant("int8-dynamic").build(ctx)
    assert not (tmp_path / "dyn.onnx").exists()


def test_the_mixed_search_tries_calibration_methods_in_place_of_dynamic_int8_on_conv_graphs(tmp_path: Path) -> None:
    import numpy as np

    from edgeship.compress.quantize.api import quantize
    from edgeship.compress.quantize.configs import MixedConfig

    conv = _conv_net(tmp_path / "conv.onnx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(3).uniform(0, 1, (24, 3, 8, 8)).astype(np.float32))
    facts = quantize(conv, MixedConfig(gates=("cosine_min>=0.9",), probes=False), out=tmp_path / "mixed.onnx",
                     calib=calib).facts
    assert sorted(c["base"] for c in facts["candidates"]) == ["int8-static", "int8-static+percentile"]
    assert [c["base"] for c in facts["skipped_candidates"]] == ["int8-dynamic", "int8-dynamic+smooth0.7",
                                                                "int8-dynamic+smooth0.5"]
    assert all("Conv layers hold" in c["why"] for c in facts["skipped_candidates"])
    assert facts["base"]["kind"] == "int8-static" and facts["base"]["calibration"] in ("minmax", "percentile")
