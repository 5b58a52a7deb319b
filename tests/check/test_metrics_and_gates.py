import math

import numpy as np
import pytest

from edgeship.check.gates import Gate, default_gates, evaluate_gates, parse_gates
from edgeship.check.metrics import output_metrics, worst_case
from edgeship.core.errors import BadInput


def test_identical_outputs_are_perfect():
    ref = [np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, -1.0, 0.0]])]
    m = output_metrics(ref, [a.copy() for a in ref])
    assert m["max_abs"] == 0 and m["cosine_min"] == pytest.approx(1.0) and m["snr_db"] == 300.0
    assert m["top1_agreement"] == 1.0


def test_metrics_match_hand_computation():
    ref = [np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])]
    cand = [np.array([[4.0, 3.0]]), np.array([[1.0, 0.1]])]
    m = output_metrics(ref, cand, labels=np.array([1, 1]))
    assert m["max_abs"] == pytest.approx(1.0)
    assert m["mean_abs"] == pytest.approx((1 + 1 + 0 + 0.1) / 4)
    assert m["rel_err_max"] == pytest.approx(1 / 4)
    cos1 = (12 + 12) / 25
    cos2 = 1 / math.sqrt(1.01)
    assert m["cosine_min"] == pytest.approx(min(cos1, cos2))
    assert m["cosine_mean"] == pytest.approx((cos1 + cos2) / 2)
    assert m["snr_db"] == pytest.approx(10 * math.log10(26 / 2.01))
    assert m["top1_agreement"] == 0.5  # argmax 1→0 in the first, 0→0 in the second
    assert m["ref_accuracy"] == 50.0 and m["accuracy"] == 0.0 and m["accuracy_drop"] == 50.0


def test_nan_in_candidate_is_counted_and_fails_gates():
    ref = [np.ones((2, 3))]
    m = output_metrics(ref, [np.array([[1, np.nan, 1], [1, 1, 1]])])
    assert m["nonfinite"] == 1
    ok, why = evaluate_gates(parse_gates(["cosine_min>=0.5"]), m)
    assert not ok and "NaN/Inf" in why


def test_variable_length_samples_and_shape_mismatch():
    ref = [np.ones((1, 5, 4)), np.ones((1, 9, 4))]
    assert output_metrics(ref, [a * 2 for a in ref])["cosine_min"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        output_metrics(ref, [np.ones((1, 5, 4)), np.ones((1, 8, 4))])


def test_gate_parsing_and_evaluation():
    g = Gate.parse("cosine_min >= 0.98")
    assert str(g) == "cosine_min>=0.98"
    assert g.evaluate({"cosine_min": 0.99})[0] and not g.evaluate({"cosine_min": 0.97})[0]
    assert g.tightest({"cosine_min": 0.9912345}) == "cosine_min>=0.991235"
    assert Gate.parse("accuracy_drop<=0.5").tightest({"accuracy_drop": 0.2}) == "accuracy_drop<=0.2"
    ok, why = Gate.parse("accuracy_drop<=0.5").evaluate({})
    assert not ok and "needs labels" in why
    for bad in ("cosine>=1", "cosine_min=>1", "cosine_min>=abc", ""):
        with pytest.raises(BadInput):
            Gate.parse(bad)
    assert [str(x) for x in parse_gates(["a_b" if False else "cosine_mean>=0.995,cosine_min>=0.98"])] == [
        "cosine_mean>=0.995", "cosine_min>=0.98"]


def test_default_gates_depend_on_precision():
    assert [str(g) for g in default_gates("fp32")] == ["rel_err_max<=0.0001", "cosine_min>=0.99999"]
    assert "rel_err_max" in str(default_gates("fp16")[0])
    assert [str(g) for g in default_gates("int8", "embedding")] == ["cosine_mean>=0.995", "cosine_min>=0.98"]
    assert [str(g) for g in default_gates("int8", "classification", ("accuracy_drop<=1",))] == ["accuracy_drop<=1"]


def test_worst_case_over_outputs():
    s = worst_case({"a": {"cosine_min": 0.9, "max_abs": 0.1, "rows": 3},
                    "b": {"cosine_min": 0.95, "max_abs": 0.3, "rows": 3}})
    assert s == {"cosine_min": 0.9, "max_abs": 0.3}
