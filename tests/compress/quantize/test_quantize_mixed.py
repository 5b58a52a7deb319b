"""The accuracy-aware mixed search on real (small) models: it keeps the most sensitive nodes in FP32
until the gate passes on held-out data with a margin, and reports why and at what cost."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.check.metrics import output_metrics
from edgeship.cli.main import main
from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.configs import Int8DynamicConfig, Int8StaticConfig, MixedConfig
from edgeship.compress.quantize.graph import run_outputs
from edgeship.compress.quantize.mixed import tightened
from edgeship.core.errors import GateFailed

STRICT = ("cosine_min>=0.99995",)  # stricter than whole INT8 reaches on this small encoder


@pytest.fixture(scope="module")
def mixed_bert(bert: Path, bert_calib: object, tmp_path_factory: pytest.TempPathFactory) -> object:
    cfg = MixedConfig(gates=STRICT, margin=0.2, candidates=(Int8DynamicConfig(optimize="none"),),
                      time_budget_s=240, max_fp32_nodes=14, sensitivity_samples=8, try_edge_remedy=False)
    return quantize(bert, cfg, out=tmp_path_factory.mktemp("mixed") / "mixed.onnx", calib=bert_calib)


@pytest.mark.slow
def test_mixed_tries_the_embedding_first_last_remedy(bert: Path, bert_calib: object, tmp_path: Path) -> None:
    cfg = MixedConfig(gates=STRICT, margin=0.2, candidates=(Int8DynamicConfig(optimize="none"),),
                      time_budget_s=240, max_fp32_nodes=14, sensitivity_samples=8)
    facts = quantize(bert, cfg, out=tmp_path / "m.onnx", calib=bert_calib).facts
    assert facts["gate"]["passed"] is True
    rows = facts["kept_fp32"]
    if all(r.get("remedy") for r in rows):  # the hand remedy was enough: embeddings + first + last layer
        ops = Counter(r["op"] for r in rows)
        assert ops["Gather"] == 3 and ops["MatMul"] == 2
        assert all(r["size_cost_bytes"] >= 0 and "embeddings/first/last" in r["why"] for r in rows)
    else:  # it was not: the search went on by sensitivity
        assert facts["sensitivity"] and facts["trials"] >= 3


@pytest.mark.slow
def test_mixed_searches_a_fused_encoder(bert: Path, bert_calib: object, tmp_path: Path) -> None:
    """On the fused graph (EmbedLayerNormalization reads int32 token ids through a Cast) the layer-wise
    sensitivity measures float tensors only, and the search keeps fused nodes FP32 by name."""
    cfg = MixedConfig(gates=STRICT, margin=0.2, candidates=(Int8DynamicConfig(),), time_budget_s=240,
                      max_fp32_nodes=14, sensitivity_samples=8, try_edge_remedy=False)
    out = quantize(bert, cfg, out=tmp_path / "fused.onnx", calib=bert_calib)
    fused = out.facts["candidates"][0]
    assert fused["passed"] is True, fused
    ops = Counter(n.op_type for n in onnx.load(str(out.path)).graph.node)
    assert ops["QAttention"] + ops["Attention"] == 2 and ops["QEmbedLayerNormalization"] + ops[
        "EmbedLayerNormalization"] == 1
    assert any(r.get("propagated_err") is not None for r in out.facts["sensitivity"])  # layer-wise errors ran


def test_tightened_gates_keep_a_margin() -> None:
    cos, drop, snr = tightened(("cosine_min>=0.98", "accuracy_drop<=0.5", "snr_db>=20"), 0.25)
    assert cos.value == pytest.approx(0.985) and drop.value == pytest.approx(0.375) and snr.value == pytest.approx(25)


@pytest.mark.slow
def test_mixed_keeps_sensitive_nodes_fp32_until_the_gate_passes(mixed_bert: object, bert: Path,
                                                                 bert_test: object, tmp_path: Path) -> None:
    facts = mixed_bert.facts  # type: ignore[attr-defined]
    assert facts["gate"]["passed"] is True
    kept = facts["nodes_kept_fp32"]
    assert 1 <= len(kept) <= 14
    # the whole-INT8 candidate failed the strict gate, which is why nodes were kept
    assert facts["candidates"][0]["whole"]["cosine_min"] < 0.99995 + 0.2 * 0.00005
    # kept nodes are the top of the sensitivity ranking, each with its reason and measured cost
    ranked = [r["node"] for r in facts["sensitivity"]]
    assert ranked[: len(kept)] == kept
    assert all(r["alone_err"] is not None for r in facts["sensitivity"])
    for row in facts["kept_fp32"]:
        assert "output error" in row["why"] and row["size_cost_bytes"] > 0
    assert facts["fp32_cost"]["size_bytes"] > 0
    # they really are float in the file; the rest is integer
    ops = Counter(n.op_type for n in onnx.load(str(mixed_bert.path)).graph.node)  # type: ignore[attr-defined]
    assert ops["MatMulInteger"] >= 1
    # and the selection generalises to data the search never saw: closer to FP32 than whole INT8
    whole = quantize(bert, Int8DynamicConfig(optimize="none"), out=tmp_path / "whole.onnx")
    ref = run_outputs(bert, bert_test.samples)  # type: ignore[attr-defined]

    def cos_min(path: Path) -> float:
        cand = run_outputs(path, bert_test.samples)  # type: ignore[attr-defined]
        return output_metrics([r["embedding_out"] for r in ref], [c["embedding_out"] for c in cand])["cosine_min"]

    assert cos_min(mixed_bert.path) > cos_min(whole.path)  # type: ignore[attr-defined]


def test_mixed_keeps_nothing_when_int8_already_passes(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    cfg = MixedConfig(gates=("cosine_min>=0.95",), candidates=(Int8DynamicConfig(),), time_budget_s=60)
    out = quantize(mlp, cfg, out=tmp_path / "m.onnx", calib=mlp_calib)
    assert out.facts["gate"]["passed"] and out.facts["nodes_kept_fp32"] == []
    assert out.facts["base_label"] == "int8-dynamic"


def test_mixed_that_cannot_pass_fails_the_gate_and_keeps_the_closest(mlp: Path, mlp_calib: Path,
                                                                       tmp_path: Path) -> None:
    cfg = MixedConfig(gates=("cosine_min>=0.9999999",), candidates=(Int8DynamicConfig(),), max_fp32_nodes=0,
                      time_budget_s=60)
    with pytest.raises(GateFailed, match="no variant met the gates") as err:
        quantize(mlp, cfg, out=tmp_path / "m.onnx", calib=mlp_calib)
    assert err.value.model.facts["gate"]["passed"] is False  # type: ignore[attr-defined]
    assert (tmp_path / "m.onnx").is_file()


def test_cli_mixed_exit_codes(mlp: Path, mlp_calib: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["quantize", str(mlp), "--method", "mixed", "--calib", str(mlp_calib), "--time-budget", "60"]
    assert main([*base, "--gate", "cosine_min>=0.95", "-o", str(tmp_path / "ok.onnx"), "--json"]) == 0
    assert '"passed": true' in capsys.readouterr().out
    code = main([*base, "--gate", "cosine_min>=0.9999999", "--max-fp32-nodes", "0", "-o", str(tmp_path / "no.onnx")])
    assert code == 1


def test_selection_data_is_held_out_of_calibration(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    cfg = MixedConfig(gates=("cosine_min>=0.95",), candidates=(Int8DynamicConfig(),), holdout_fraction=0.25)
    out = quantize(mlp, cfg, out=tmp_path / "m.onnx", calib=mlp_calib)
    gate = out.facts["gate"]
    assert gate["samples"] == 12 and "held out of calibration" in gate["data"]
    assert np.isclose(out.facts["metrics"]["cosine_min"], out.facts["metrics"]["cosine_min"])


def test_mixed_selects_on_data_and_probes_and_verifies_on_held_out_data(mlp: Path, mlp_calib: Path,
                                                                         mlp_test: Path, tmp_path: Path) -> None:
    cfg = MixedConfig(gates=("cosine_min>=0.95",), candidates=(Int8DynamicConfig(),), time_budget_s=60)
    facts = quantize(mlp, cfg, out=tmp_path / "m.onnx", calib=mlp_calib, verify_data=mlp_test).facts
    gate = facts["gate"]
    assert gate["passed"] and gate["selection_probes"] >= 4  # selection probes (calibration-range edges)
    trial = facts["trial_log"][0]
    assert trial["passed"] and trial["selection"]["cosine_min"] > 0.95 and trial["probes"]["cosine_min"] > 0.95
    verified = gate["verified"]
    assert verified["passed"] and verified["samples"] == 64 and verified["probes"]["passed"]
    assert verified["metrics"]["cosine_min"] > 0.95


def test_verification_rejects_a_choice_that_does_not_hold_on_new_data(mlp: Path, mlp_calib: Path,
                                                                       tmp_path: Path) -> None:
    """Static INT8 calibrated on N(0, 1) inputs passes selection and the probes at the edges of that
    range, then clips inputs 20 times wider: verification rejects it, and the search says why."""
    wide = tmp_path / "wide.npz"
    np.savez(wide, x=(np.random.default_rng(3).standard_normal((32, 16)) * 20).astype(np.float32))
    cfg = MixedConfig(gates=("cosine_min>=0.9",), candidates=(Int8StaticConfig(),), time_budget_s=60,
                      max_fp32_nodes=0)
    with pytest.raises(GateFailed) as err:
        quantize(mlp, cfg, out=tmp_path / "m.onnx", calib=mlp_calib, verify_data=wide)
    facts = err.value.model.facts  # type: ignore[attr-defined]
    assert facts["trial_log"][0]["passed"]  # it met the gates where it was selected
    assert facts["verification"][0]["passed"] is False and facts["verification"][0]["metrics"]["cosine_min"] < 0.9
    assert "held on the verification data" in facts["gate"]["why"]


def test_the_selection_split_beside_a_calibration_split() -> None:
    from edgeship.core.data import sibling_split

    assert sibling_split("data:sentences:calib", "select") == "data:sentences:select"
    assert sibling_split("data:images:calib", "select") == "data:images:select"
    assert sibling_split("data:images:select", "select") is None
    assert sibling_split("data:digits-calib", "select") is None and sibling_split("calib.npz", "select") is None


def test_max_size_ratio_keeps_big_nodes_quantized(mlp: Path, mlp_calib: Path, tmp_path: Path) -> None:
    """A node whose FP32 weights would take the file past max_size_ratio is never kept FP32 (MiniLM's
    embedding table: keeping it costs half the FP32 size), and the ranking says why."""
    strict = dict(gates=("cosine_min>=0.99995",), candidates=(Int8DynamicConfig(optimize="none"),), time_budget_s=60,
                  max_fp32_nodes=2, try_edge_remedy=False)
    free = quantize(mlp, MixedConfig(**strict), out=tmp_path / "free.onnx", calib=mlp_calib).facts
    assert free["nodes_kept_fp32"]  # without a size limit the search keeps nodes FP32
    with pytest.raises(GateFailed) as err:
        quantize(mlp, MixedConfig(**strict, max_size_ratio=0.05), out=tmp_path / "small.onnx", calib=mlp_calib)
    facts = err.value.model.facts  # type: ignore[attr-defined]
    assert facts["nodes_kept_fp32"] == []
    assert all("max_size_ratio=0.05" in r["left_out"] for r in facts["sensitivity"])
