"""data:digits-*: scikit-learn's digits split exactly as zoo:digits-cnn was trained, with labels."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import load_data
from edgeship.core.errors import BadInput
from edgeship.zoo import digits as zdigits


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


DIGITS_NCHW = _io(("input", "float32", ("batch", 1, 8, 8)))
BERT = _io(*((n, "int64", ("batch", "sequence")) for n in ("input_ids", "attention_mask", "token_type_ids")))


def test_digits_follow_the_training_split() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, y_train, y_test = train_test_split(digits.images, digits.target, test_size=0.25, random_state=0,
                                                  stratify=digits.target)
    test = load_data("data:digits-test", DIGITS_NCHW)
    assert len(test) == len(x_test) == 450 and test.labels.tolist() == y_test.tolist()
    np.testing.assert_allclose(np.concatenate([s["input"] for s in test])[:, 0], x_test / 16.0, rtol=1e-6)
    calib = load_data("data:digits-calib", DIGITS_NCHW)
    assert len(calib) == zdigits.DIGITS_CALIB and calib.labels.tolist() == y_train[:zdigits.DIGITS_CALIB].tolist()
    assert calib.samples[0]["input"].shape == (1, 1, 8, 8) and calib.samples[0]["input"].dtype == np.float32
    x = np.concatenate([s["input"] for s in calib])
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_digits_fit_flat_and_channels_last_models() -> None:
    nchw = load_data("data:digits-test", DIGITS_NCHW, limit=4)
    flat = load_data("data:digits-test", _io(("x", "float32", ("n", 64))), limit=4)
    nhwc = load_data("data:digits-test", _io(("x", "float64", (None, 8, 8, 1))), limit=4)
    for a, b, c in zip(nchw, flat, nhwc):
        np.testing.assert_array_equal(a["input"].reshape(1, 64), b["x"])
        np.testing.assert_array_equal(a["input"].transpose(0, 2, 3, 1), c["x"])
    assert nhwc.samples[0]["x"].dtype == np.float64 and len(flat.labels) == 4
    nchw.samples[0]["input"][:] = 7.0  # samples are the caller's own arrays, not the cache's
    assert load_data("data:digits-test", DIGITS_NCHW, limit=1).samples[0]["input"].max() <= 1.0


@pytest.mark.parametrize("spec, io, words", [
    ("data:digits-test", _io(("input", "float32", ("batch", 3, 8, 8))), "8×8"),
    ("data:digits-test", _io(("input", "int64", ("batch", 64))), "int64"),
    ("data:digits-calib", BERT, "3 inputs"),
    ("data:digits-test:calib", DIGITS_NCHW, "no splits"),
])
def test_digits_refuse_models_they_do_not_fit(spec: str, io: IOSpec, words: str) -> None:
    with pytest.raises(BadInput, match=words):
        load_data(spec, io)


def test_the_train_split_is_labelled_and_disjoint_from_the_test_split() -> None:
    train = load_data("data:digits-train", DIGITS_NCHW)
    test = load_data("data:digits-test", DIGITS_NCHW)
    assert train.name == "data:digits-train" and len(train) == 1347 and len(train.labels) == 1347
    x_train, y_train, _, _ = zdigits.digits_arrays()
    np.testing.assert_array_equal(np.concatenate([s["input"] for s in train]), x_train)
    assert train.labels.tolist() == y_train.tolist()
    seen = {s["input"].tobytes() for s in train.samples}
    assert sum(s["input"].tobytes() in seen for s in test.samples) < 5  # sklearn holds a few duplicate images
    calib = load_data("data:digits-calib", DIGITS_NCHW)
    np.testing.assert_array_equal(calib.samples[3]["input"], train.samples[3]["input"])  # calib is part of train
    flat = load_data("data:digits-train", _io(("x", "float32", (None, 64))), limit=2)
    assert flat.samples[0]["x"].shape == (1, 64)


def test_the_digits_split_is_cached_and_a_damaged_cache_is_made_again(tmp_path, monkeypatch) -> None:
    """Split once (scikit-learn imported), then read from the user cache folder: the same arrays,
    read-only; a file cut short is split again."""
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    zdigits.digits_arrays.cache_clear()
    try:
        first = zdigits.digits_arrays()
        (cached,) = (tmp_path / "data").glob("digits-*.npz")
        zdigits.digits_arrays.cache_clear()
        again = zdigits.digits_arrays()
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
            assert not b.flags.writeable and a.dtype == b.dtype
        cached.write_bytes(cached.read_bytes()[:100])
        zdigits.digits_arrays.cache_clear()
        third = zdigits.digits_arrays()
        np.testing.assert_array_equal(third[2], first[2])
        with np.load(cached) as f:  # written again, whole
            np.testing.assert_array_equal(f["y_test"], first[3])
    finally:
        zdigits.digits_arrays.cache_clear()
