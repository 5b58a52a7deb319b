"""Broken outputs are named — NaN/Inf, or zeros where the reference has values — with what they mean."""

import numpy as np

from edgeship.check.judge import judge
from edgeship.core.broken import broken


def test_broken_says_what_happened():
    assert broken(np.full((1, 1920), np.nan, np.float32)) == "1,920 of 1,920 values are NaN"
    assert broken([np.array([1.0, np.inf, np.nan])]) == "1 NaN and 1 Inf among 3 values"
    assert broken(np.zeros(8), np.full(8, 3e-25)) == "all 8 values are zero (the reference's reach 3e-25)"
    assert broken(np.zeros(8), np.zeros(8)) == ""  # zeros where zeros are due
    assert broken(np.ones(8)) == ""


def _samples(values):
    return [{"logits": np.asarray(v, np.float32).reshape(1, -1)} for v in values]


def test_judge_names_nan_outputs_of_fp16_before_the_metrics():
    ref = _samples([np.linspace(-1, 1, 1920)] * 2)
    cand = _samples([np.full(1920, np.nan)] * 2)
    res = judge(ref, cand, precision="fp16", name="model.xml")
    assert res.status == "fail"
    assert res.why.startswith("output 'logits': 3,840 of 3,840 values are NaN: the activations overflow fp16 "
                              "(largest 65504); keep the overflowing layers in fp32")


def test_judge_names_zero_outputs_of_int8_and_passes_healthy_ones():
    ref = _samples([np.full(10, 2e-24), np.full(10, -1e-24)])
    res = judge(ref, _samples([np.zeros(10), np.zeros(10)]), precision="int8", task="other")
    assert res.status == "fail"
    assert "all 20 values are zero (the reference's reach 2e-24): the activations fall below the quantizer's " \
           "resolution" in res.why
    ok = judge(ref, ref, precision="int8")
    assert ok.status == "pass" and "values are" not in ok.why
