"""MiniLM (slow: one export per session): the smoothed dynamic INT8 model meets the embedding gate on
held-out sentences at a quarter of the size, where plain dynamic INT8 is measurably worse."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgeship.check.gates import evaluate_gates, parse_gates
from edgeship.check.metrics import output_metrics
from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.configs import Int8DynamicConfig
from edgeship.compress.quantize.graph import run_outputs
from edgeship.core.artifact import Model
from edgeship.core.data import load_data


@pytest.mark.slow
def test_minilm_smoothed_int8_meets_the_gate_on_held_out_sentences(minilm: Path, tmp_path: Path) -> None:
    src = Model.open(minilm)
    test = load_data("data:sentences:test", src.io, limit=100)
    ref = [r["sentence_embedding"] for r in run_outputs(minilm, test.samples)]

    def metrics(path: Path) -> dict:
        return output_metrics(ref, [r["sentence_embedding"] for r in run_outputs(path, test.samples)])

    smoothed = quantize(src, Int8DynamicConfig(smooth_alpha=0.7), out=tmp_path / "s.onnx",
                        calib="data:sentences:calib")
    plain = quantize(src, Int8DynamicConfig(), out=tmp_path / "p.onnx")
    m_s, m_p = metrics(smoothed.path), metrics(plain.path)
    passed, why = evaluate_gates(parse_gates(["cosine_mean>=0.995", "cosine_min>=0.98"]), m_s)
    assert passed, why
    assert m_s["cosine_min"] > m_p["cosine_min"]
    assert smoothed.facts["size_ratio"] <= 0.30
    # the exported graph is fused (attention of all 6 layers) so ORT runs its integer attention kernel
    fused = smoothed.facts["transformer_fusion"]["fused_ops"]
    assert fused["Attention"] == 6 and fused["EmbedLayerNormalization"] == 1
    # fusion is checked against the unfused graph, on synthetic tokens when no calibration data is given
    for m in (smoothed, plain):
        parity = m.facts["transformer_fusion"]["parity"]
        assert parity["samples"] == 4 and parity["rel_err_max"] < 1e-3
    assert any(n.op_type == "QAttention" for n in onnx.load(str(smoothed.path), load_external_data=False).graph.node)
