"""A variant called passing keeps passing on data it never saw: the mixed search fits on the
``select`` split (and the selection probes), and the variant it picks is then judged by
``edgeship check`` on the disjoint ``test`` split and the check's own probes (slow: real models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.check.comparator import check
from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.configs import Int8DynamicConfig, Int8StaticConfig, MixedConfig
from edgeship.core.errors import GateFailed

pytestmark = pytest.mark.slow


def _fit_then_verify(source: str, onnx_path: Path, out: Path, cfg: MixedConfig, calib: str) -> tuple[dict, object]:
    try:
        model = quantize(onnx_path, cfg, out=out, calib=calib)
    except GateFailed as exc:  # report what it got to: the assertion below says it failed
        model = exc.model  # type: ignore[attr-defined]
    facts = model.facts
    result = check(source, [str(out)], gates=list(cfg.gates), precision="mixed")
    return facts, result.candidates[0]


def test_minilm_fitted_on_select_passes_on_test_and_probes(minilm: Path, tmp_path: Path) -> None:
    cfg = MixedConfig(gates=("cosine_mean>=0.995", "cosine_min>=0.98"),
                      candidates=(Int8DynamicConfig(smooth_alpha=0.5),), time_budget_s=300, max_fp32_nodes=10,
                      sensitivity_samples=12)
    facts, verdict = _fit_then_verify("zoo:minilm", minilm, tmp_path / "mixed.onnx", cfg, "data:sentences:calib")
    gate = facts["gate"]
    assert gate["passed"], gate["why"]
    assert gate["data"] == "the selection split data:sentences:select" and gate["selection_probes"] > 20
    # judged where it was not fitted: the test split (every kind of text) and the check's probes
    assert verdict.passed, verdict.why
    assert verdict.rows == 349 and verdict.probes["status"] == "pass" and verdict.probes["rows"] > 20
    assert facts["size_ratio"] <= 0.30


def test_efficientnet_fitted_on_select_passes_on_test_and_probes(tmp_path: Path) -> None:
    from edgeship.export.exporter import export

    onnx_path = export("zoo:efficientnet-lite0", tmp_path / "effnet.onnx").path
    cfg = MixedConfig(gates=("top1_agreement_confident>=0.99", "top5_agreement>=0.99"),
                      candidates=(Int8StaticConfig(per_channel=True),), time_budget_s=420, max_fp32_nodes=16,
                      sensitivity_samples=12)
    facts, verdict = _fit_then_verify("zoo:efficientnet-lite0", onnx_path, tmp_path / "mixed.onnx", cfg,
                                      "data:images:calib")
    assert facts["gate"]["passed"], facts["gate"]["why"]
    assert facts["gate"]["data"] == "the selection split data:images:select"
    assert verdict.passed, verdict.why
    assert verdict.summary["top1_agreement_confident"] == 1.0 and verdict.probes["status"] == "pass"
