"""Bad calibration data stops with one line (BadInput, exit 2) and writes nothing; the produced
graph is checked for NaN and zero scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.cli.main import main
from edgeship.compress.quantize.api import quantize
from edgeship.compress.quantize.calibration import chunks, pad_to_common
from edgeship.compress.quantize.configs import Int8DynamicConfig, Int8StaticConfig, MixedConfig
from edgeship.compress.quantize.graph import assert_sane
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput


def ds(arrays: list[np.ndarray], name: str = "calib") -> Dataset:
    return Dataset(name, [{"x": a} for a in arrays])


def good(n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(n)]


CASES = {
    "empty": (lambda: ds([]), "empty"),
    "too few": (lambda: ds(good(2)), "at least 4"),
    "nan": (lambda: ds([*good(7), np.full((1, 16), np.nan, np.float32)]), "NaN"),
    "inf": (lambda: ds([*good(7), np.full((1, 16), np.inf, np.float32)]), "NaN or Inf"),
    "constant": (lambda: ds([np.full((1, 16), 0.5, np.float32)] * 8), "constant"),
    "wrong shape": (lambda: ds([np.zeros((1, 15), np.float32)] * 8), "shape"),
    "wrong dtype": (lambda: ds([np.zeros((1, 16), np.int64)] * 8), "int64"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_calibration_data_is_one_line_and_writes_nothing(mlp: Path, tmp_path: Path, case: str) -> None:
    make, words = CASES[case]
    out = tmp_path / "q.onnx"
    out.write_bytes(b"previous good file")
    with pytest.raises(BadInput, match=words) as err:
        quantize(mlp, Int8StaticConfig(), out=out, calib=make())
    assert "\n" not in str(err.value)
    assert out.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]


def test_methods_that_calibrate_require_data(mlp: Path, tmp_path: Path) -> None:
    for cfg in (Int8StaticConfig(), MixedConfig(), Int8DynamicConfig(smooth_alpha=0.5)):
        with pytest.raises(BadInput, match="needs calibration data"):
            quantize(mlp, cfg, out=tmp_path / "q.onnx")


def test_unknown_excluded_node_is_an_error(mlp: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no node named 'fc9'"):
        quantize(mlp, Int8DynamicConfig(nodes_to_exclude=("fc9",)), out=tmp_path / "q.onnx")


def test_cli_bad_calibration_exits_2(mlp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "const.npz"
    np.savez(data, x=np.ones((16, 16), np.float32))
    code = main(["quantize", str(mlp), "--method", "int8-static", "--calib", str(data), "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "constant" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.onnx").exists()


def test_padding_and_buckets() -> None:
    a = {"ids": np.ones((1, 3), np.int64)}
    b = {"ids": np.ones((1, 5), np.int64)}
    padded = pad_to_common([a, b])
    assert [p["ids"].shape for p in padded] == [(1, 5), (1, 5)]
    assert padded[0]["ids"][0].tolist() == [1, 1, 1, 0, 0]
    groups = list(chunks([a, b, a, a], "bucket", chunk_size=2))
    assert sorted(len(g) for g in groups) == [1, 1, 2]
    assert all(len({s["ids"].shape for s in g}) == 1 for g in groups)
    assert [len(g) for g in chunks([a, b, a], "pad", chunk_size=2)] == [2, 1]


def _qdq_model(scale: float) -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array(scale, np.float32), "s"),
         numpy_helper.from_array(np.array(0, np.uint8), "z")])
    return helper.make_model(g)


def test_sanity_check_refuses_zero_and_nan_scales() -> None:
    assert_sane(_qdq_model(0.1), "t")
    with pytest.raises(BadInput, match="zero activation scale"):
        assert_sane(_qdq_model(0.0), "t")
    with pytest.raises(BadInput, match="NaN"):
        assert_sane(_qdq_model(float("nan")), "t")
