"""OpenVINO on the digits CNN: f32 parity with ONNX Runtime, bf16/f16 as explicit variants, NNCF INT8."""

from __future__ import annotations

import numpy as np
import pytest
from digits_fixtures import accuracy

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.openvino.target import OpenVinoTargetConfig

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ov_fp32(digits_onnx, out_dir):
    return convert(digits_onnx, "openvino", out_dir / "digits_ov.xml")


def test_fp32_matches_onnxruntime(ov_fp32, digits_test, ort_logits):
    from edgeship.targets.base import runner_for

    weights = ov_fp32.path.with_suffix(".bin")
    assert weights.is_file()
    assert ov_fp32.size_bytes == ov_fp32.path.stat().st_size + weights.stat().st_size  # the .bin counts
    assert ov_fp32.facts["inference_precision"] == "f32"
    reopened = Model.open(ov_fp32.path)  # from the sidecar
    assert reopened.io == ov_fp32.io and reopened.format == "openvino"
    with runner_for(reopened) as r:
        out = r.infer(digits_test[0])["logits"]
        assert r.info["inference_precision"] == "f32"
    assert np.abs(out - ort_logits).max() <= 1e-4


def test_inspect_reads_the_ir(ov_fp32, tmp_path):
    import shutil

    for suffix in (".xml", ".bin"):
        shutil.copyfile(ov_fp32.path.with_suffix(suffix), (tmp_path / "bare").with_suffix(suffix))
    io = Model.open(tmp_path / "bare.xml").io
    assert [(t.name, t.dtype, t.shape) for t in io.inputs] == [("input", "float32", (None, 1, 8, 8))]
    assert io.outputs[0].name == "logits"


def test_bf16_is_an_explicit_variant(digits_onnx, out_dir, digits_test, ort_logits):
    from edgeship.targets.openvino.runner import OpenVinoRunner

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_bf16.xml", precision="bf16")
    with OpenVinoRunner(m) as r:
        out = r.infer(digits_test[0])["logits"]
        assert r.info["inference_precision"] in ("bf16", "bfloat16")
    err = np.abs(out - ort_logits).max()
    # bf16 keeps 8 mantissa bits: visibly off from f32, yet the same answers
    assert 1e-4 < err < 0.5
    assert abs(accuracy(out, digits_test[1]) - accuracy(ort_logits, digits_test[1])) <= 1.0


def test_nncf_int8_keeps_accuracy(digits_onnx, out_dir, digits_test, digits_calib, ort_logits, ov_fp32):
    from edgeship.targets.openvino.runner import OpenVinoRunner

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_int8.xml", precision="int8", calib=digits_calib)
    assert m.facts["precision"] == "int8" and m.facts["nncf"]["subset_size"] == len(digits_calib)
    with OpenVinoRunner(m) as r:
        out = r.infer(digits_test[0])["logits"]
    assert np.abs(out - ort_logits).max() > 1e-3  # really quantized
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    assert m.path.with_suffix(".bin").stat().st_size < ov_fp32.path.with_suffix(".bin").stat().st_size


def test_a_qdq_file_runs_as_built(digits_onnx, out_dir, digits_test, digits_calib, ort_logits):
    """precision as-built: the ONNX file's own QuantizeLinear/DequantizeLinear pairs become INT8 ops
    (FakeQuantize in the IR), no NNCF pass; the answers stay those of the quantized file."""
    from edgeship.compress.quantize.api import quantize
    from edgeship.compress.quantize.configs import Int8StaticConfig
    from edgeship.targets.base import runner_for
    from edgeship.targets.openvino.offline import openvino

    qdq = quantize(digits_onnx, Int8StaticConfig(per_channel=True), out=out_dir / "digits_qdq.onnx", calib=digits_calib)
    m = convert(qdq, "openvino", out_dir / "digits_as_built.xml", precision="as-built")
    assert m.facts["quantization"].endswith("run in INT8") and "nncf" not in m.facts
    kinds = {op.get_type_name() for op in openvino().Core().read_model(str(m.path)).get_ops()}
    assert "FakeQuantize" in kinds
    with runner_for(m) as r, runner_for(qdq) as ort:
        out, ref = r.infer(digits_test[0])["logits"], ort.infer(digits_test[0])["logits"]
    assert np.abs(out - ort_logits).max() > 1e-3  # quantized, not the float model
    assert abs(accuracy(out, digits_test[1]) - accuracy(ref, digits_test[1])) <= 1.0
    plain = convert(digits_onnx, "openvino", out_dir / "digits_plain_as_built.xml", precision="as-built")
    assert plain.facts["quantization"] == "as built: no static INT8 in the graph"


def test_as_built_of_a_file_with_onnx_runtime_kernels_is_not_applicable(tmp_path):
    """ONNX Runtime's fused INT8 kernels (QAttention: its dynamic quantizer's output for transformers)
    have no OpenVINO conversion: as-built says so (optimize lists the cell as skipped), nothing written."""
    import onnx
    from onnx import TensorProto, helper

    from edgeship.core.errors import NotApplicable

    node = helper.make_node("QAttention", ["x"], ["y"], domain="com.microsoft", num_heads=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), tmp_path / "q.onnx")
    with pytest.raises(NotApplicable, match=r"as-built: OpenVINO has no conversion for .*QAttention.*onnxruntime"):
        convert(tmp_path / "q.onnx", "openvino", tmp_path / "q.xml", precision="as-built")
    assert not (tmp_path / "q.xml").exists()


def test_int8_weight_compiles_with_its_activation_group(digits_onnx, out_dir, digits_test, ort_logits):
    """The group of input channels per run-time activation scale is part of the file's facts, and the
    runner compiles the IR with it; a negative group is refused with the fix."""
    pytest.importorskip("nncf")
    from edgeship.targets.base import runner_for

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_w8_g16.xml", precision="int8-weight",
                activation_group_size=16)
    assert m.facts["activation_group_size"] == 16 and "per 16 input channels" in m.facts["nncf"]["activations"]
    with runner_for(Model.open(m.path), threads=1) as runner:
        assert int(runner.activate()[1].get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == 16
        out = runner.infer(digits_test[0])["logits"]
    assert (out.argmax(1) == ort_logits.argmax(1)).mean() >= 0.97  # 8-bit weights, INT8 activations
    with pytest.raises(BadInput, match="activation_group_size=-1"):
        OpenVinoTargetConfig(precision="int8-weight", activation_group_size=-1)


def test_int8_without_calibration_is_bad_input(digits_onnx, out_dir):
    with pytest.raises(BadInput, match="calibration"):
        convert(digits_onnx, "openvino", out_dir / "x.xml", precision="int8")
    assert not (out_dir / "x.xml").exists()


def test_config_round_trip_and_validation():
    cfg = OpenVinoTargetConfig(precision="int8", model_type="transformer", calib_samples=50)
    assert OpenVinoTargetConfig.from_json(cfg.to_json()) == cfg
    assert OpenVinoTargetConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(BadInput, match="precision"):
        OpenVinoTargetConfig(precision="int4")
    with pytest.raises(BadInput, match="model_type"):
        OpenVinoTargetConfig(model_type="cnn")


def test_failure_after_conversion_is_reported_with_the_per_output_error(digits_source, digits_onnx, out_dir):
    """bf16 passes its own (bf16) gates but not FP32 parity: judged on OpenVINO's own outputs, it fails, and the
    report carries the per-output error that failed it."""
    from edgeship.check.comparator import check

    m = convert(digits_onnx, "openvino", out_dir / "digits_ov_bf16_gate.xml", precision="bf16")
    strict = check(digits_source, [m], data="data:digits-test", runtime="openvino", precision="fp32", limit=64)
    cand = strict.to_dict()["candidates"][0]
    assert cand["status"] == "fail" and "rel_err_max" in cand["why"]
    assert cand["outputs"]["logits"]["max_abs"] > 1e-3
    own = check(digits_source, [m], data="data:digits-test", runtime="openvino", limit=64)
    assert own.candidates[0].status == "pass"  # its precision's default gates


def test_int8_settings_are_searched_per_model_with_a_selector(digits_onnx, out_dir, digits_calib):
    """With a selector (edgeship optimize builds one from the select split and the gates), NNCF's
    settings are searched: each candidate really quantized and judged, the one named kept."""
    pytest.importorskip("nncf")
    from edgeship.check.selection import int8_selector
    from edgeship.core.data import load_data
    from edgeship.targets.base import get_target
    from edgeship.targets.openvino.converter import search_space

    select = load_data("data:digits-test", digits_onnx.io, limit=96)
    selector = int8_selector(digits_onnx, select, ["top1_agreement_confident>=0.95", "top5_agreement>=0.99"],
                             calib=digits_calib)
    m = get_target("openvino").convert(digits_onnx, out_dir / "digits_ov_int8_searched.xml", precision="int8",
                                       calib=digits_calib, selector=selector)
    search = m.facts["nncf"]["search"]
    labels = [label for label, _ in search_space(OpenVinoTargetConfig(precision="int8"), digits_onnx)]
    assert [c["label"] for c in search["candidates"]] == labels == ["performance", "mixed-preset",
                                                                    "performance+bias-correction"]
    chosen = [c for c in search["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["label"] == search["chosen"]
    for c in search["candidates"]:
        assert c["selection"]["rows"] == 96 and c["probes"]["rows"] >= 5  # data and probes judged each
        assert 0.5 < c["selection"]["top1_agreement"] <= 1.0
    assert chosen[0]["slack"] == max(c["slack"] for c in search["candidates"] if c["passed"] == chosen[0]["passed"])
    assert m.facts["nncf"]["preset"] == {"performance": "performance", "mixed-preset": "mixed",
                                         "performance+bias-correction": "performance"}[search["chosen"]]
    # no selector: the fixed settings, no search
    plain = convert(digits_onnx, "openvino", out_dir / "digits_ov_int8_plain.xml", precision="int8",
                    calib=digits_calib)
    assert "search" not in plain.facts["nncf"]


def _masked_mean_encoder(path):
    """Token ids → embedding table → mean over the positions the mask keeps: padding-invariant."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32), "table")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
             helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "axes2"], ["mask3"]),
             helper.make_node("Mul", ["emb", "mask3"], ["kept"]),
             helper.make_node("ReduceSum", ["kept", "axes"], ["total"], keepdims=0),
             helper.make_node("ReduceSum", ["maskf", "axes"], ["count"], keepdims=1),
             helper.make_node("Div", ["total", "count"], ["sentence_embedding"])]
    graph = helper.make_graph(nodes, "enc", [helper.make_tensor_value_info(n, TensorProto.INT64, ["b", "s"])
                                             for n in ("input_ids", "attention_mask")],
                              [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["b", 8])],
                              [table, axes, numpy_helper.from_array(np.array([2], np.int64), "axes2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return Model.open(path)


def test_static_shapes_and_length_buckets_dispatch(tmp_path, digits_onnx, digits_test, ort_logits):
    from edgeship.targets.base import runner_for

    # images: one static compiled model per input shape, same numbers as dynamic f32
    static = convert(digits_onnx, "openvino", tmp_path / "digits_static.xml", static_shapes=True)
    with runner_for(static) as r:
        out = r.infer(digits_test[0])["logits"]
        r.infer({"input": digits_test[0]["input"][:1]})
        assert len(r._static_sessions) == 2
    assert np.abs(out - ort_logits).max() <= 1e-4
    with pytest.raises(BadInput, match="attention mask"):
        convert(digits_onnx, "openvino", tmp_path / "x.xml", static_shapes=True, length_buckets=(16,))
    with pytest.raises(BadInput, match="static_shapes"):
        OpenVinoTargetConfig(length_buckets=(16,))
    # text: padded to the next bucket, masked out, the answer unchanged; longer inputs run dynamic
    enc = _masked_mean_encoder(tmp_path / "enc.onnx")
    ov = convert(enc, "openvino", tmp_path / "enc.xml", static_shapes=True, length_buckets=(4, 8))
    rng = np.random.default_rng(1)
    with runner_for(enc) as ref, runner_for(ov) as r:
        for length in (2, 3, 4, 7, 11):
            ids = rng.integers(1, 50, (1, length))
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            np.testing.assert_allclose(r.infer(feeds)["sentence_embedding"], ref.infer(feeds)["sentence_embedding"],
                                       rtol=1e-5, atol=1e-6)
        assert sorted(k[0][1][1] for k in r._static_sessions) == [4, 8]  # buckets 4 and 8 only; 11 ran dynamic
