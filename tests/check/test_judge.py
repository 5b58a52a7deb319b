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
    assert res.summary["top1_agreement_confident"] == pytest.approx(0.9)  # one-hot logits: every row is confident
    assert res.status == "fail"  # a confident row flips, and 10 points of accuracy are lost
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


def test_every_verdict_carries_its_n_interval_and_worst_sample():
    rng = np.random.default_rng(3)
    ref = [{"emb": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(40)]
    cand = [{"emb": o["emb"] + rng.standard_normal((1, 16)).astype(np.float32) * 0.05} for o in ref]
    cand[7] = {"emb": ref[7]["emb"] + rng.standard_normal((1, 16)).astype(np.float32) * 0.6}  # the worst one
    ids = [f"sentence {i}" for i in range(40)]
    res = judge(ref, cand, ["cosine_mean>=0.9", "cosine_min>=0.5"], sample_ids=ids)
    assert res.rows == 40 and res.stats["cosine_mean"]["n"] == 40
    lo, hi = res.stats["cosine_mean"]["ci95"]
    assert lo < res.summary["cosine_mean"] < hi and hi - lo < 0.05
    assert res.stats["cosine_min"]["worst_sample"] == "sentence 7"
    # the same data always gives the same interval (a seeded bootstrap)
    assert judge(ref, cand, [], sample_ids=ids).stats["cosine_mean"]["ci95"] == [lo, hi]
    assert res.clear_pass and not res.marginal


def test_a_gate_met_by_less_than_its_noise_margin_is_marginal():
    rng = np.random.default_rng(4)
    ref = [{"emb": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(30)]
    cand = [{"emb": o["emb"] + rng.standard_normal((1, 16)).astype(np.float32) * s}
            for o, s in zip(ref, np.linspace(0.01, 0.3, 30))]
    base = judge(ref, cand, [])
    worst = base.summary["cosine_min"]
    gap = base.stats["cosine_min"]["noise_margin"]  # the worst row's distance to the second-worst
    assert gap > 0
    tight = judge(ref, cand, [f"cosine_min>={worst - gap / 4}"])
    assert tight.passed and tight.marginal == [f"cosine_min>={worst - gap / 4:g}"] and not tight.clear_pass
    assert "marginal" in tight.why
    roomy = judge(ref, cand, [f"cosine_min>={worst - 4 * gap}"])
    assert roomy.clear_pass
    assert judge(ref, cand, [f"cosine_min>={worst + gap}"]).marginal == []  # a failure is not marginal


def test_classifier_gate_judges_confident_rows_and_top5_not_near_ties():
    rng = np.random.default_rng(5)
    n = 60
    ref = rng.standard_normal((n, 20)).astype(np.float32)
    confident = np.arange(n) % 3 != 0
    ref[confident, 0] += 6.0  # class 0 leads clearly on two rows in three
    top2 = np.argsort(ref[~confident], axis=1)[:, -2:]
    ref[~confident, top2[:, 1]] = ref[~confident, top2[:, 0]] + 1e-3  # near-ties on the others
    cand = ref.copy()
    swap = np.flatnonzero(~confident)
    for i in swap:  # bf16-like: every near-tie flips
        a, b = np.argsort(cand[i])[-2:]
        cand[i, a], cand[i, b] = cand[i, b], cand[i, a]
    refs = [{"logits": r[None]} for r in ref]
    res = judge(refs, [{"logits": c[None]} for c in cand], precision="int8", task="classification")
    assert res.gates == ["top1_agreement_confident>=0.99", "top5_agreement>=0.99"]
    assert res.summary["top1_agreement"] == pytest.approx(2 / 3) and res.summary["top1_agreement_confident"] == 1.0
    assert res.summary["top5_agreement"] == 1.0 and res.passed
    assert res.stats["top1_agreement_confident"]["n"] == int(confident.sum())
    lo = res.stats["top1_agreement_confident"]["ci95"][0]
    assert 0.9 < lo < 1.0  # 40 of 40 agree: the Wilson interval does not claim certainty
    # the old gate is still there, and rejects near-tie flips
    assert not judge(refs, [{"logits": c[None]} for c in cand], ["top1_agreement>=0.99"]).passed
    # a flip where the reference was sure fails the default gate and names that sample
    bad = cand.copy()
    sure = int(np.flatnonzero(confident)[3])
    bad[sure, 0] = -10.0
    res = judge(refs, [{"logits": c[None]} for c in bad], precision="int8", task="classification",
                sample_ids=[f"crop {i}" for i in range(n)])
    assert not res.passed and res.stats["top1_agreement_confident"]["worst_sample"] == f"crop {sure}"
    # with labels, the accuracy drop joins the defaults
    labels = np.zeros(n, dtype=np.int64)
    assert "accuracy_drop<=1" in judge(refs, refs, precision="int8", task="classification", labels=labels).gates
