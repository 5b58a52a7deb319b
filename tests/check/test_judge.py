"""The one comparison engine: verdicts on outputs computed here, by real arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.check.gates import PRECISION_GATES, TASK_GATES, TOLERANCES_FILE, parse_gates
from edgeship.check.judge import judge


def _outputs(n: int = 6, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"logits": rng.standard_normal((2, 10)).astype(np.float32),
             "emb": rng.standard_normal((2, 8)).astype(np.float32)} for _ in range(n)]


def test_identical_outputs_pass_the_fp32_defaults():
    ref = _outputs()
    res = judge(ref, [dict(o) for o in ref])
    assert res.passed and res.gates == [str(g) for g in parse_gates(PRECISION_GATES["fp32"])]
    assert res.summary["max_abs"] == 0 and res.summary["cosine_min"] == pytest.approx(1.0)
    assert set(res.per_output) == {"logits", "emb"} and all(v["passed"] for v in res.per_output.values())


def test_small_float_noise_passes_fp32_and_larger_noise_names_the_worst_output():
    ref = _outputs()
    rng = np.random.default_rng(1)
    tiny = [{k: v + rng.standard_normal(v.shape).astype(np.float32) * 1e-7 for k, v in o.items()} for o in ref]
    assert judge(ref, tiny).passed
    noisy = [{"logits": o["logits"] + 0.05, "emb": o["emb"] + 1e-7} for o in ref]
    res = judge(ref, noisy)
    assert res.status == "fail" and res.worst_output == "logits"
    assert "rel_err_max" in res.why and "worst output: logits" in res.why
    assert res.per_output["emb"]["passed"] and not res.per_output["logits"]["passed"]
    # the tightest tolerance that would have passed is the measured value itself
    assert any(t.startswith("rel_err_max<=") for t in res.tightest)
    loose = float(next(t for t in res.tightest if t.startswith("rel_err_max<=")).split("<=")[1])
    assert judge(ref, noisy, [f"rel_err_max<={loose * 1.01}"]).passed


def test_lossy_precision_uses_the_task_gate_and_nan_always_fails():
    ref = _outputs()
    cand = [{k: v * 1.001 for k, v in o.items()} for o in ref]  # same direction: cosine 1
    res = judge(ref, cand, precision="int8", task="embedding")
    assert res.passed and res.gates == [str(g) for g in parse_gates(TASK_GATES["embedding"])]
    broken = [dict(o) for o in cand]
    broken[2] = {"logits": np.full((2, 10), np.nan, np.float32), "emb": broken[2]["emb"]}
    res = judge(ref, broken, [])
    assert res.status == "fail" and "NaN/Inf" in res.why and res.worst_output == "logits"


def test_classifier_metrics_follow_the_task_and_labels():
    ref = [{"logits": np.eye(10, dtype=np.float32)[[i, (i + 1) % 10]]} for i in range(5)]
    swapped = [dict(o) for o in ref]
    swapped[0] = {"logits": np.eye(10, dtype=np.float32)[[5, 1]]}  # one of 10 rows flips
    labels = np.array([i for k in range(5) for i in (k, (k + 1) % 10)])
    res = judge(ref, swapped, precision="int8", task="classification", labels=labels)
    assert res.summary["top1_agreement"] == pytest.approx(0.9)
    assert res.summary["accuracy_drop"] == pytest.approx(10.0)
    assert res.status == "fail"  # the default classifier gate asks for 99% agreement
    emb = judge(ref, swapped, precision="int8", task="embedding")
    assert "top1_agreement" not in emb.summary


def test_mismatched_samples_and_outputs_are_errors_not_verdicts():
    ref = _outputs(3)
    assert judge(ref, ref[:2]).status == "error"
    renamed = [{"a": o["logits"], "b": o["emb"]} for o in ref]
    assert judge(ref, renamed).passed  # converters rename outputs: matched by position
    assert judge(ref, [{"a": o["logits"]} for o in ref]).status == "error"
    wrong_shape = [{"logits": o["logits"][:, :5], "emb": o["emb"]} for o in ref]
    res = judge(ref, wrong_shape)
    assert res.status == "error" and "logits" in res.why


def test_the_tolerance_table_is_data():
    import yaml

    table = yaml.safe_load(TOLERANCES_FILE.read_text())
    assert tuple(table["precision"]["fp32"]) == PRECISION_GATES["fp32"]
    assert set(table["task"]) == set(TASK_GATES)
