import numpy as np
import pytest

from edgeship.core.artifact import Model
from edgeship.core.data import load_data, parse_shapes
from edgeship.core.errors import BadInput
from models.tiny import tiny_onnx


@pytest.fixture()
def model(tmp_path):
    return Model.open(tiny_onnx(tmp_path / "m.onnx"))


def test_npz_rows_become_samples_with_labels(tmp_path, model):
    x = np.random.default_rng(0).standard_normal((5, 16))  # float64: cast to the model's float32
    np.savez(tmp_path / "d.npz", x=x, labels=np.arange(5))
    ds = load_data(tmp_path / "d.npz", model.io)
    assert len(ds) == 5 and ds.rows == 5 and ds.samples[0]["x"].shape == (1, 16)
    assert ds.samples[0]["x"].dtype == np.float32
    assert list(ds.labels) == [0, 1, 2, 3, 4]
    assert ds.batch(3)["x"].shape == (3, 16)


def test_npy_folder(tmp_path, model):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.ones((2, 16), np.float32))
    assert len(load_data(tmp_path / "data", model.io)) == 2


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.ones((2, 16), np.float32)}, "lacks input"),
    ({"x": np.ones((2, 8), np.float32)}, "has shape"),
    ({"x": np.ones((2, 16, 1), np.float32)}, "wants 2 dims"),
    ({"x": np.ones((2, 16), np.int64)}, "the model wants float32"),
    ({"x": np.full((2, 16), np.nan, np.float32)}, "NaN or Inf"),
    ({"x": np.full((2, 16), np.inf, np.float32)}, "NaN or Inf"),
    ({"x": np.ones((0, 16), np.float32)}, "empty"),
])
def test_bad_data_is_refused_in_one_line(tmp_path, model, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadInput, match=message) as exc:
        load_data(tmp_path / "bad.npz", model.io)
    assert "\n" not in str(exc.value)


def test_missing_and_unreadable_files(tmp_path, model):
    with pytest.raises(BadInput, match="not found"):
        load_data(tmp_path / "none.npz", model.io)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(BadInput, match="not a readable"):
        load_data(tmp_path / "bad.npz", model.io)
    with pytest.raises(BadInput, match="unknown data source"):
        load_data("data:nope", model.io)


def test_synthetic_follows_the_spec_and_shapes(tmp_path, model):
    ds = load_data("data:synthetic", model.io, limit=3)
    assert len(ds) == 3 and ds.samples[0]["x"].shape == (1, 16)
    ds = load_data("data:synthetic", model.io, shapes=parse_shapes(["x:4,16"]))
    assert ds.samples[0]["x"].shape == (4, 16)
    with pytest.raises(BadInput, match="has shape"):
        load_data("data:synthetic", model.io, shapes=parse_shapes(["x:4,15"]))
    with pytest.raises(BadInput, match="not inputs of the model"):
        load_data("data:synthetic", model.io, shapes=parse_shapes(["y:1,2"]))
    with pytest.raises(BadInput, match="NAME:D0,D1"):
        parse_shapes(["x=1,2"])
