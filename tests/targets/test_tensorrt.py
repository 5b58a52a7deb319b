"""TensorRT: where it (or an NVIDIA GPU) is absent, convert and run say exactly that; the GPU-free parts
(builder flags, profile shapes for dynamic dims, calibration batches, config checks) are tested here."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, Model, TensorSpec
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.targets.base import get_target
from edgeship.targets.tensorrt.plan import CalibrationBatches, builder_flags, profile_shapes
from edgeship.targets.tensorrt.target import TensorrtTargetConfig

TEXT_IO = IOSpec((TensorSpec("input_ids", "int64", ("batch", "sequence")),
                  TensorSpec("attention_mask", "int64", ("batch", "sequence"))),
                 (TensorSpec("sentence_embedding", "float32", ("batch", 384)),))
IMAGE_IO = IOSpec((TensorSpec("input", "float32", ("batch", 1, 8, 8)),), (TensorSpec("logits", "float32", ()),))


def _rows(lengths):
    return [{"input_ids": np.ones((1, n), np.int64), "attention_mask": np.ones((1, n), np.int64)} for n in lengths]


def test_availability_names_what_is_missing():
    avail = get_target("tensorrt").availability()
    if avail.runs_here:
        pytest.skip("TensorRT and a GPU are present")
    assert avail.why in ("TensorRT is not installed / no NVIDIA GPU", "TensorRT is not installed", "no NVIDIA GPU")


def test_convert_and_runner_refuse_with_the_reason(digits_onnx, tmp_path):
    from edgeship.api import convert

    target = get_target("tensorrt")
    why = target.availability().why
    if not why:
        pytest.skip("TensorRT and a GPU are present")
    with pytest.raises(NotRunnableHere) as exc:
        convert(digits_onnx, "tensorrt", tmp_path / "d.engine", precision="fp16")
    assert why in str(exc.value)
    assert not (tmp_path / "d.engine").exists()
    with pytest.raises(NotRunnableHere, match=why.replace("/", ".")):
        target.runner(Model(tmp_path / "d.engine", "engine", digits_onnx.io))


def test_builder_flags_per_precision():
    assert builder_flags(TensorrtTargetConfig()) == []
    assert builder_flags(TensorrtTargetConfig(precision="fp16")) == ["FP16"]
    assert builder_flags(TensorrtTargetConfig(precision="int8")) == ["INT8", "FP16"]
    assert builder_flags(TensorrtTargetConfig(precision="int8", fp16_fallback=False)) == ["INT8"]


def test_profile_shapes_from_spec_and_data():
    cfg = TensorrtTargetConfig(calib_batch=4, max_batch=16)
    assert profile_shapes(IMAGE_IO, cfg) == {"input": ((1, 1, 8, 8), (4, 1, 8, 8), (16, 1, 8, 8))}
    shapes = profile_shapes(TEXT_IO, cfg, _rows([5, 9, 9, 31]))
    assert shapes["input_ids"] == ((1, 5), (4, 9), (16, 31))  # opt = the most common length
    assert shapes["attention_mask"] == shapes["input_ids"]


def test_profile_needs_data_for_a_dynamic_sequence_or_a_given_profile():
    with pytest.raises(BadInput, match="sequence"):
        profile_shapes(TEXT_IO, TensorrtTargetConfig())
    given = {"input_ids": {"min": [1, 1], "opt": [1, 32], "max": [8, 128]},
             "attention_mask": {"min": [1, 1], "opt": [1, 32], "max": [8, 128]}}
    shapes = profile_shapes(TEXT_IO, TensorrtTargetConfig(profile=given))
    assert shapes["input_ids"] == ((1, 1), (1, 32), (8, 128))


def test_bad_profiles_are_refused():
    with pytest.raises(BadInput, match="min <= opt <= max"):
        TensorrtTargetConfig(profile={"x": {"min": [1, 64], "opt": [1, 32], "max": [1, 128]}})
    with pytest.raises(BadInput, match="min, opt and max"):
        TensorrtTargetConfig(profile={"x": {"min": [1], "max": [2]}})
    with pytest.raises(BadInput, match="precision"):
        TensorrtTargetConfig(precision="int4")


def test_calibration_batches_stack_cast_and_drop():
    rows = _rows([7] * 10 + [3])  # one row of another length cannot stack
    for r in rows:
        r["input_ids"] = r["input_ids"] * np.arange(1, 8)[: r["input_ids"].shape[1]]
    batches = CalibrationBatches(rows, ["input_ids", "attention_mask"], batch_size=4)
    got = list(batches)
    assert batches.skipped == 1 and len(batches) == 2 and len(got) == 2  # 10 rows → 2 full batches of 4
    assert got[0]["input_ids"].shape == (4, 7) and got[0]["input_ids"].dtype == np.int32
    assert got[0]["input_ids"].flags["C_CONTIGUOUS"]
    assert got[1]["input_ids"][0].tolist() == list(range(1, 8))
    with pytest.raises(BadInput, match="calibration"):
        CalibrationBatches([], ["x"], 4)
    small = CalibrationBatches(_rows([4, 4]), ["input_ids", "attention_mask"], batch_size=8)
    assert small.batch_size == 2 and len(small) == 1  # fewer rows than a batch: one smaller batch
