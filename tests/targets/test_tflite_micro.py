"""TFLite Micro on the digits CNN: full INT8 with int8 I/O, the tensor arena it needs, the RAM budget as a
gate, and the same answers on TFLite Micro as on LiteRT."""

from __future__ import annotations

import pytest
from digits_fixtures import accuracy

from edgeship.api import convert
from edgeship.core.errors import BadInput, GateFailed
from edgeship.targets.base import get_target, runner_for
from edgeship.targets.tflite_micro.target import TfliteMicroTargetConfig


def test_config_is_int8_only_and_checks_the_budget():
    assert TfliteMicroTargetConfig().precision == "int8" and TfliteMicroTargetConfig().int8_io
    with pytest.raises(BadInput, match=r"^tflite-micro precision 'fp32'; choose one of int8$"):
        TfliteMicroTargetConfig(precision="fp32")
    with pytest.raises(BadInput, match="ram_bytes must be positive"):
        TfliteMicroTargetConfig(ram_bytes=0)
    assert get_target("tflite-micro").runs_format == ""  # .tflite files run on LiteRT unless asked


@pytest.fixture(scope="module")
def micro(digits_onnx, out_dir, digits_calib):
    pytest.importorskip("onnx2tf")
    pytest.importorskip("tflite_micro")
    return convert(digits_onnx, "tflite-micro", out_dir / "digits_micro.tflite", calib=digits_calib)


@pytest.mark.slow
def test_int8_io_and_the_arena(micro, digits_test, ort_logits):
    arena = micro.facts["arena_bytes"]
    assert 1_000 < arena < 64 * 1024  # a 13k-parameter CNN fits a small microcontroller
    assert micro.facts["tflite"]["inputs"][0]["dtype"] == "int8"  # int8 I/O by default for MCUs
    with get_target("tflite-micro").runner(micro, threads=4) as r:
        assert r.threads == 1  # a microcontroller interpreter is single-threaded
        out = r.infer(digits_test[0])["logits"]  # 450 rows, fed one at a time
    assert out.shape == ort_logits.shape
    assert accuracy(ort_logits, digits_test[1]) - accuracy(out, digits_test[1]) <= 1.0
    # the same file on LiteRT gives the same answers as on TFLite Micro
    with runner_for(micro) as lite:
        assert lite.runtime == "litert"
        lite_out = lite.infer(digits_test[0])["logits"]
    assert (lite_out.argmax(1) == out.argmax(1)).mean() >= 0.99


@pytest.mark.slow
def test_a_ram_budget_below_the_arena_fails_the_gate(micro, out_dir):
    arena = micro.facts["arena_bytes"]
    # a gate failure that names the arena; the file stays unwritten
    with pytest.raises(GateFailed, match=str(arena)):
        convert(micro, "tflite-micro", out_dir / "tiny_mcu.tflite", ram_bytes=arena // 2)
    assert not (out_dir / "tiny_mcu.tflite").exists()
    again = convert(micro, "tflite-micro", out_dir / "roomy_mcu.tflite", ram_bytes=arena * 2)
    assert again.facts["arena_bytes"] == arena


def test_a_float_model_is_refused_with_the_fix(digits_onnx, out_dir):
    with pytest.raises(BadInput, match="choose one of int8"):
        convert(digits_onnx, "tflite-micro", out_dir / "f.tflite", precision="fp32")
