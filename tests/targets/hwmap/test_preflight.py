"""Pre-flight: the requirements record and what it says about a target and a device runtime."""

from __future__ import annotations

import json

from hwmap_graphs import conv_chain

from edgeship.targets.hwmap.graph import read_onnx
from edgeship.targets.hwmap.preflight import check_requirements, release_facts, requirements


def record(**kw):
    return requirements(read_onnx(conv_chain(["Relu"], **kw)), "onnx")


def test_the_record_is_small_canonical_json():
    rec = record(batch="N")
    assert json.loads(json.dumps(rec, sort_keys=True)) == rec
    assert all(not isinstance(v, float) for v in rec.values())  # TUF canonical JSON has no floats
    assert rec["opsets"] == {"ai.onnx": 18} and "Conv@11" in rec["ops"] and "Relu@14" in rec["ops"]
    assert rec["dynamic_inputs"] == {"x": ["?", 4, 8, 8]} and rec["weights_bytes"] == 4 * 4 * 3 * 3 * 4


def test_opset_newer_than_the_device_runtime():
    rec = record(opset=18)
    assert check_requirements(rec, "onnxruntime", "1.14.1") == []  # 1.14 implements opset 18
    old = check_requirements(rec, "onnxruntime", "1.12.0")
    assert [p.kind for p in old] == ["opset"] and "up to 17" in old[0].what and "--opset 17" in old[0].fix
    ancient = check_requirements(rec, "onnxruntime", "0.9")
    assert ancient[0].kind == "runtime" and ancient[0].blocking
    assert release_facts("onnxruntime", "1.13.5") == ("1.12", {"opset": 17})


def test_dynamic_shapes_block_a_static_only_target_and_warn_where_there_is_a_fallback():
    rec = record(batch="N")
    npu = check_requirements(rec, "openvino-npu")
    assert [(p.kind, p.blocking) for p in npu] == [("dynamic_shape", True)]
    htp = check_requirements(rec, "qnn-htp")
    assert [(p.kind, p.blocking) for p in htp] == [("dynamic_shape", False)]
    assert check_requirements(record(), "openvino-npu") == []


def test_ops_a_runtime_lacks_and_memory_over_budget():
    rec = {**record(), "vocabulary": "tflite", "ops": ["CONV_2D@1", "GELU@1"], "dtypes": ["int8"]}
    micro = check_requirements(rec, "tflite-micro")
    assert [p.kind for p in micro] == ["op"] and "GELU" in micro[0].what
    over = check_requirements(record(), "onnxruntime", memory_budget=100)
    assert over[0].kind == "memory" and "over the budget of 100 B" in over[0].what
    assert check_requirements({**record(), "arena_bytes": 5000}, "tflite-micro", memory_budget=4096)[0].kind == "memory"


def test_training_ops_do_not_load_on_onnxruntime():
    rec = {**record(), "ops": ["ai.onnx.preview.training:Gradient@1"]}
    problems = check_requirements(rec, "onnxruntime")
    assert problems[0].kind == "op" and "training builds" in problems[0].what
