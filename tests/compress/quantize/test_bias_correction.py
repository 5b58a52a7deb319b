"""Bias correction of static INT8 on a real graph: a small depthwise-separable CNN, quantized by
ONNX Runtime's QDQ quantizer, run by ONNX Runtime. Its depthwise kernels hold one large tap and
24 small ones (the shape BatchNorm folding leaves): INT8 rounding of the small taps shifts every
channel's mean, and the correction must take that shift out on data it was not measured on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.bias_correction import correct_biases, correctable_layers
from edgeship.compress.quantize.configs import Int8StaticConfig
from edgeship.compress.quantize.graph import run_outputs
from edgeship.core.errors import BadInput

C = 16


def _cnn(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    stem = rng.normal(0, 0.3, (C, 3, 3, 3)).astype(np.float32)
    # 24 small taps, under half an INT8 step: rounded to zero...
    dw = rng.uniform(0.0008, 0.0015, (C, 1, 5, 5)).astype(np.float32)
    dw[:, 0, 2, 2] = rng.uniform(0.3, 0.5, C)  # ...beside one large tap that sets each channel's scale
    pw = rng.normal(0, 0.3, (8, C, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (stem, "w_stem"), (rng.normal(0.5, 0.1, C).astype(np.float32), "b_stem"),
        (dw, "w_dw"), (rng.normal(0, 0.1, C).astype(np.float32), "b_dw"),
        (pw, "w_pw"), (rng.normal(0, 0.1, 8).astype(np.float32), "b_pw"))]
    nodes = [
        helper.make_node("Conv", ["x", "w_stem", "b_stem"], ["s"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["s"], ["sr"], name="stem_relu"),
        helper.make_node("Conv", ["sr", "w_dw", "b_dw"], ["d"], name="dw", group=C, pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["d"], ["dr"], name="dw_relu"),
        helper.make_node("Conv", ["dr", "w_pw", "b_pw"], ["y"], name="pw"),
    ]
    graph = helper.make_graph(nodes, "dwcnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 12, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, 3, 12, 12)).astype(np.float32)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, np.ndarray]]]:
    folder = tmp_path_factory.mktemp("dwcnn")
    calib = folder / "calib.npz"
    np.savez(calib, x=_images(48, 1))
    held_out = [{"x": x[None]} for x in _images(32, 2)]
    return _cnn(folder / "cnn.onnx"), calib, held_out


def _channel_mean_error(ref_path: Path, cand_path: Path, feeds: list[dict[str, np.ndarray]]) -> float:
    ref = np.concatenate([r["y"] for r in run_outputs(ref_path, feeds)])
    cand = np.concatenate([r["y"] for r in run_outputs(cand_path, feeds)])
    shift = (ref - cand).mean(axis=(0, 2, 3))
    return float(np.abs(shift).mean() / np.abs(ref).mean())


def test_bias_correction_takes_out_the_mean_shift_of_weight_rounding(cnn: tuple, tmp_path: Path) -> None:
    src, calib, held_out = cnn
    plain = quantize(src, Int8StaticConfig(bias_correction=False), out=tmp_path / "plain.onnx", calib=calib)
    fixed = quantize(src, Int8StaticConfig(), out=tmp_path / "fixed.onnx", calib=calib)
    before, after = _channel_mean_error(src, plain.path, held_out), _channel_mean_error(src, fixed.path, held_out)
    # measured here: the rounding shifts the channel means by ~8% of the output's magnitude
    assert before > 0.03, before
    assert after < before / 3, (before, after)
    bc = fixed.facts["bias_correction"]
    assert bc["layers"] == 3 and bc["samples"] == 48 and "bias_correction" not in plain.facts
    # only INT32 biases change: same ops, same weights and scales
    g0, g1 = onnx.load(str(plain.path)).graph, onnx.load(str(fixed.path)).graph
    assert [n.op_type for n in g0.node] == [n.op_type for n in g1.node]
    a0 = {i.name: numpy_helper.to_array(i) for i in g0.initializer}
    a1 = {i.name: numpy_helper.to_array(i) for i in g1.initializer}
    changed = {k for k in a0 if not np.array_equal(a0[k], a1[k])}
    assert changed and all(a1[k].dtype == np.int32 for k in changed)


def test_correctable_layers_are_the_quantized_ones_with_int32_bias(cnn: tuple, tmp_path: Path) -> None:
    src, calib, held_out = cnn
    part = quantize(src, Int8StaticConfig(bias_correction=False, nodes_to_exclude=("pw",)), out=tmp_path / "p.onnx",
                    calib=calib)
    layers = correctable_layers(onnx.load(str(part.path)))
    assert [L["node"].name for L in layers] == ["stem", "dw"]
    # correcting a file again is harmless: what is left to take out is rounding noise
    once = correct_biases(src, part.path, held_out[:16], tmp_path / "once.onnx")
    twice = correct_biases(src, tmp_path / "once.onnx", held_out[:16], tmp_path / "twice.onnx")
    assert once["largest_shift"]["relative_shift"] > 10 * twice["largest_shift"]["relative_shift"]


def test_bias_correction_samples_must_be_positive() -> None:
    with pytest.raises(BadInput, match="bias_correction_samples=0"):
        Int8StaticConfig(bias_correction_samples=0)
