"""The .tflite runner plumbing shared by LiteRT and TFLite Micro: the tensor map, layouts, (de)quantization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, Model, TensorSpec
from edgeship.core.errors import BadInput
from edgeship.targets.tflite.runner import (
    TfliteRunner,
    dequantize,
    file_layout_inputs,
    io_map_of,
    onnx_layout,
    quantize,
)

IO = IOSpec((TensorSpec("image", "float32", ("batch", 3, 4, 5)), TensorSpec("scale", "float32", ("batch", 1))),
            (TensorSpec("logits", "float32", ("batch", 10)),))


def test_without_a_sidecar_tensors_map_by_position():
    m = io_map_of(Model(Path("m.tflite"), "tflite", IO), ["serving_image:0", "serving_scale:0", "third"], ["out:0"])
    assert [(e["name"], e["index"], e["perm"]) for e in m["inputs"]] == [
        ("image", 0, None), ("scale", 1, None), ("third", 2, None)]  # the file's name where the spec has none
    assert m["outputs"] == [{"name": "logits", "index": 0, "perm": None}]
    recorded = {"inputs": [{"name": "image", "index": 1, "perm": [0, 2, 3, 1]}], "outputs": []}
    assert io_map_of(Model(Path("m.tflite"), "tflite", IO, facts={"tflite": recorded}), [], []) is recorded


def test_inputs_go_into_the_files_layout_and_outputs_come_back():
    runner = TfliteRunner(Model(Path("m.tflite"), "tflite", IO))
    io_map = {"inputs": [{"name": "scale", "index": 0, "perm": None}, {"name": "image", "index": 1,
                                                                         "perm": [0, 2, 3, 1]}]}
    image = np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5)
    (i0, scale), (i1, nhwc) = file_layout_inputs(runner, io_map, {"image": image, "scale": np.ones((1, 1))})
    assert (i0, i1) == (0, 1) and scale.shape == (1, 1) and nhwc.shape == (1, 4, 5, 3)
    np.testing.assert_array_equal(onnx_layout({"perm": [0, 2, 3, 1]}, nhwc), image)
    assert onnx_layout({"perm": None}, scale) is scale
    with pytest.raises(BadInput, match=r"feeds lack input\(s\) image of m\.tflite"):
        file_layout_inputs(runner, io_map, {"scale": np.ones((1, 1))})


def test_quantize_round_trips_within_half_a_step():
    x = np.array([-1.0, -0.02, 0.0, 0.5, 3.0], np.float32)
    q = quantize(x, np.int8, 0.01, -3)
    assert q.dtype == np.int8 and q.tolist() == [-103, -5, -3, 47, 127]  # 3.0 saturates at 127
    back = dequantize(q, 0.01, -3)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[:4], x[:4], atol=0.005 + 1e-7)
    assert dequantize(x, 0.01, -3) is x and quantize(x, np.float32, 0.0, 0).dtype == np.float32
