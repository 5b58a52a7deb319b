"""Each method on real models: the output loads and runs in ONNX Runtime and stays within a stated
tolerance of the FP32 model on held-out inputs; its graph really holds the quantized ops."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.check.metrics import output_metrics
from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.configs import Fp16Config, Int4WeightConfig, Int8DynamicConfig, Int8StaticConfig
from edgeship.compress.quantize.graph import run_outputs
from edgeship.core.artifact import Model
from edgeship.core.data import load_data


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def compare(ref_path: Path, cand_path: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    ref, cand = run_outputs(ref_path, feeds), run_outputs(cand_path, feeds)
    name = next(iter(ref[0]))
    return output_metrics([r[name] for r in ref], [c[name] for c in cand])


@pytest.fixture(scope="module")
def mlp_feeds(mlp: Path, mlp_test: Path) -> list[dict[str, np.ndarray]]:
    return load_data(mlp_test, Model.open(mlp).io).samples


def test_fp16_keeps_fp32_io_and_runs(mlp: Path, tmp_path: Path, mlp_feeds: list) -> None:
    out = quantize(mlp, Fp16Config(), out=tmp_path / "m16.onnx")
    assert out.io.inputs[0].dtype == "float32" and out.io.outputs[0].dtype == "float32"
    inits = onnx.load(str(out.path)).graph.initializer
    assert {i.data_type for i in inits if i.name.startswith("w")} == {onnx.TensorProto.FLOAT16}
    m = compare(mlp, out.path, mlp_feeds)
    assert m["rel_err_max"] < 5e-3 and m["cosine_min"] > 0.9999
    assert out.facts["method"] == "fp16" and 0.4 < out.facts["size_ratio"] < 0.8


def test_fp16_block_list_keeps_nodes_fp32(mlp: Path, tmp_path: Path) -> None:
    out = quantize(mlp, Fp16Config(node_block_list=("fc2",)), out=tmp_path / "m16b.onnx")
    g = onnx.load(str(out.path)).graph
    dtypes = {i.name: i.data_type for i in g.initializer}
    assert dtypes["w2"] == onnx.TensorProto.FLOAT and dtypes["w1"] == onnx.TensorProto.FLOAT16


@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_dynamic(mlp: Path, tmp_path: Path, mlp_feeds: list, per_channel: bool) -> None:
    out = quantize(mlp, Int8DynamicConfig(per_channel=per_channel), out=tmp_path / "d.onnx")
    assert ops(out.path)["MatMulInteger"] == 2
    m = compare(mlp, out.path, mlp_feeds)
    assert m["cosine_min"] > 0.995 and m["top1_agreement"] >= 0.95
    # per-channel scales: one per output column
    scales = [i for i in onnx.load(str(out.path)).graph.initializer if i.name.endswith("w1_scale")]
    assert list(scales[0].dims) == ([32] if per_channel else [])


def test_int8_dynamic_excluded_node_stays_float(mlp: Path, tmp_path: Path) -> None:
    out = quantize(mlp, Int8DynamicConfig(nodes_to_exclude=("fc2",)), out=tmp_path / "dx.onnx")
    counts = ops(out.path)
    assert counts["MatMulInteger"] == 1 and counts["MatMul"] == 1
    assert out.facts["nodes_kept_fp32"] == ["fc2"]


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_int8_static_calibration_methods(mlp: Path, mlp_calib: Path, tmp_path: Path, mlp_feeds: list,
                                         method: str) -> None:
    out = quantize(mlp, Int8StaticConfig(calibration=method), out=tmp_path / f"s-{method}.onnx", calib=mlp_calib)
    counts = ops(out.path)
    assert counts["QuantizeLinear"] >= 2 and counts["DequantizeLinear"] >= 4
    m = compare(mlp, out.path, mlp_feeds)
    assert m["cosine_min"] > 0.98 and m["top1_agreement"] >= 0.9
    assert out.facts["calibration"] == {"method": method, "samples": 48, "policy": "bucket"}


def test_int8_static_symmetric_activations(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    from onnx import numpy_helper

    out = quantize(mlp, Int8StaticConfig(symmetric_activations=True), out=tmp_path / "sym.onnx", calib=mlp_calib)
    g = onnx.load(str(out.path)).graph
    inits = {i.name: i for i in g.initializer}
    zps = [inits[n.input[2]] for n in g.node if n.op_type == "QuantizeLinear"]
    assert zps and all(z.data_type == onnx.TensorProto.INT8 and not numpy_helper.to_array(z).any() for z in zps)


def test_int8_static_op_type_exclusion(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    out = quantize(mlp, Int8StaticConfig(op_types_exclude=("Gemm", "MatMul")), out=tmp_path / "ex.onnx",
                   calib=mlp_calib)
    weights_quantized = [n for n in onnx.load(str(out.path)).graph.node
                         if n.op_type == "DequantizeLinear" and n.input[0].startswith("w")]
    assert weights_quantized == []


def test_int8_static_leaves_no_temporary_files(mlp: Path, mlp_calib: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = set(os.listdir(tmp_path))
    quantize(mlp, Int8StaticConfig(calibration="entropy"), out=tmp_path / "s.onnx", calib=mlp_calib)
    assert os.listdir(work) == []
    assert set(os.listdir(tmp_path)) - before == {"s.onnx", "s.onnx.edgeship.json"}


def test_int8_static_varied_lengths_pad_and_bucket(bert: Path, bert_calib: object, bert_test: object,
                                                   tmp_path: Path) -> None:
    results = {}
    for policy in ("pad", "bucket"):
        out = quantize(bert, Int8StaticConfig(calibration="percentile", pad_policy=policy, chunk_size=4),
                       out=tmp_path / f"b-{policy}.onnx", calib=bert_calib)
        results[policy] = compare(bert, out.path, bert_test.samples)
        assert ops(out.path)["QuantizeLinear"] > 10
    # a random-weight encoder quantized everywhere still points the same way
    for m in results.values():
        assert m["cosine_mean"] > 0.9


def test_int4_weight_only(bert: Path, tmp_path: Path, bert_test: object) -> None:
    out = quantize(bert, Int4WeightConfig(block_size=32, quantize_gather=True), out=tmp_path / "q4.onnx")
    counts = ops(out.path)
    assert counts["MatMulNBits"] >= 10 and counts["GatherBlockQuantized"] >= 1
    m = compare(bert, out.path, bert_test.samples)
    assert m["cosine_mean"] > 0.97
    assert out.facts["size_ratio"] < 0.4


def test_int8_weight_blockwise_is_near_lossless(bert: Path, tmp_path: Path, bert_test: object) -> None:
    out = quantize(bert, Int4WeightConfig(bits=8, block_size=32, quantize_gather=False), out=tmp_path / "q8.onnx")
    m = compare(bert, out.path, bert_test.samples)
    assert m["cosine_min"] > 0.999


def test_int8_dynamic_smoothing_on_encoder(bert: Path, bert_calib: object, bert_test: object, tmp_path: Path) -> None:
    out = quantize(bert, Int8DynamicConfig(smooth_alpha=0.7), out=tmp_path / "sm.onnx", calib=bert_calib)
    g = onnx.load(str(out.path)).graph
    muls = sum(1 for n in g.node if n.op_type == "Mul" and n.name.endswith("_smooth"))
    # one Mul per smoothed activation tensor, shared by the nodes reading it (fused QKV reads one)
    assert muls == out.facts["smoothing_muls"] > 0 and out.facts["smoothed_nodes"] >= muls
    assert out.facts["transformer_fusion"]["fused"] is True
    m = compare(bert, out.path, bert_test.samples)
    assert m["cosine_min"] > 0.99


def test_output_is_a_model_with_provenance(mlp: Path, tmp_path: Path) -> None:
    out = quantize(Model.open(mlp), Int8DynamicConfig(), out=tmp_path / "p.onnx")
    again = Model.open(out.path)  # the sidecar describes the file
    assert again.provenance[-1].stage == "quantize"
    assert again.provenance[-1].config["kind"] == "int8-dynamic"
    assert again.facts["size_bytes"] == out.path.stat().st_size
