"""The bundled data sets: real, deterministic, split without overlap, fitted to the model's inputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import data_sources, load_data
from edgeship.core.errors import BadInput
from edgeship.zoo import data as zdata


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


IMAGE_NCHW = _io(("input", "float32", ("batch", 3, 224, 224)))
DIGITS_NCHW = _io(("input", "float32", ("batch", 1, 8, 8)))
BERT = _io(*((n, "int64", ("batch", "sequence")) for n in ("input_ids", "attention_mask", "token_type_ids")))


def test_sources_are_registered() -> None:
    sources = {s.name: s for s in data_sources()}
    assert {"images", "digits-calib", "digits-test", "sentences"} <= set(sources)
    assert sources["images"].splits == ("calib", "test") and sources["images"].default_split == "test"
    assert sources["sentences"].splits == ("calib", "test") and sources["sentences"].default_split == "test"


# -- images -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_splits() -> dict[str, object]:
    return {s: load_data(f"data:images:{s}", IMAGE_NCHW) for s in ("calib", "test")}


def test_images_split_by_photo(image_splits) -> None:
    calib, test = image_splits["calib"], image_splits["test"]
    assert set(calib.info["photos"]).isdisjoint(test.info["photos"])
    assert len(calib.info["photos"]) >= 8 and len(test.info["photos"]) >= 8
    assert {"coffee", "chelsea"} <= set(test.info["photos"])
    assert {c.partition("#")[0] for c in test.info["crops"]} == set(test.info["photos"])
    assert len(calib) + len(test) >= 300
    # No pixel-identical crop in both parts either.
    digest = {hashlib.sha256(s["input"].tobytes()).hexdigest() for s in calib}
    assert not digest & {hashlib.sha256(s["input"].tobytes()).hexdigest() for s in test}


def test_images_are_varied_crops_in_the_model_range(image_splits) -> None:
    ds = image_splits["test"]
    x = np.concatenate([s["input"] for s in ds])
    assert x.shape == (len(ds), 3, 224, 224) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9 and x.max() > 0.9
    # Crop 1 of each photo is crop 0 mirrored.
    crops = ds.info["crops"]
    first, mirrored = ds.samples[crops.index("coffee#0")]["input"], ds.samples[crops.index("coffee#1")]["input"]
    np.testing.assert_array_equal(first[..., ::-1], mirrored)
    # Every crop of a photo differs from the others (different places, scales, flips).
    coffee = [s["input"].tobytes() for s, c in zip(ds.samples, crops) if c.startswith("coffee#")]
    assert len(set(coffee)) == len(coffee) == zdata.CROPS_PER_PHOTO


def test_images_are_deterministic(image_splits) -> None:
    rebuilt = zdata.image_crops.__wrapped__()  # a fresh build, bypassing the per-process cache
    for split in ("calib", "test"):
        arrays, ids = zdata.image_crops()[split]
        assert rebuilt[split][1] == ids
        np.testing.assert_array_equal(rebuilt[split][0], arrays)
    again = load_data("data:images:test", IMAGE_NCHW)
    assert all(np.array_equal(a["input"], b["input"]) for a, b in zip(again, image_splits["test"]))


def test_images_photos_are_the_packages_photos() -> None:
    from skimage import data as skdata

    np.testing.assert_array_equal(zdata._photo("skimage", "coffee.png"), skdata.coffee())
    grey = zdata._photo("skimage", "camera.png")
    assert grey.shape == (512, 512, 3) and all(np.array_equal(grey[..., c], skdata.camera()) for c in range(3))


def test_images_fit_the_model_layout_size_and_dtype(image_splits) -> None:
    nchw = image_splits["test"]
    nhwc = load_data("data:images", _io(("image", "float32", ("n", 224, 224, 3))), limit=3)
    assert [s["image"].shape for s in nhwc] == [(1, 224, 224, 3)] * 3
    np.testing.assert_array_equal(nhwc.samples[2]["image"], nchw.samples[2]["input"].transpose(0, 2, 3, 1))
    small = load_data("data:images:calib", _io(("x", "float16", (1, 3, 96, 128))), limit=2)
    assert small.samples[0]["x"].shape == (1, 3, 96, 128) and small.samples[0]["x"].dtype == np.float16
    shaped = load_data("data:images", _io(("input", "float32", ("b", 3, "h", "w"))),
                       shapes={"input": (1, 3, 160, 160)}, limit=1)
    assert shaped.samples[0]["input"].shape == (1, 3, 160, 160)
    first = load_data("data:images", IMAGE_NCHW, limit=5)
    assert len(first) == 5 and all(np.array_equal(a["input"], b["input"]) for a, b in zip(first, nchw))


@pytest.mark.parametrize("io, words", [
    (BERT, "3 inputs"),
    (_io(("input", "int64", ("batch", 3, 224, 224))), "int64"),
    (_io(("input", "float32", ("batch", 224, 224))), "3 dims"),
    (_io(("input", "float32", ("batch", 1, 224, 224))), "3 channels"),
])
def test_images_refuse_models_they_do_not_fit(io: IOSpec, words: str) -> None:
    with pytest.raises(BadInput, match=words) as err:
        load_data("data:images", io)
    assert "\n" not in str(err.value)


def test_images_unknown_split_and_shape_name() -> None:
    with pytest.raises(BadInput, match="no split 'train'"):
        load_data("data:images:train", IMAGE_NCHW)
    with pytest.raises(BadInput, match="pixels"):
        load_data("data:images", IMAGE_NCHW, shapes={"pixels": (1, 3, 224, 224)})


# -- digits -----------------------------------------------------------------------------------------
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
    assert len(calib) == zdata.DIGITS_CALIB and calib.labels.tolist() == y_train[:zdata.DIGITS_CALIB].tolist()
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


# -- sentences --------------------------------------------------------------------------------------
def _short(text: str) -> bool:
    return len(text.split()) <= 3


def test_sentences_are_many_real_disjoint_and_include_short_ones() -> None:
    splits = zdata.sentence_splits()
    calib, test = splits["calib"], splits["test"]
    assert len(calib) + len(test) >= 300
    assert len(set(calib)) == len(calib) and len(set(test)) == len(test) and not set(calib) & set(test)
    for texts in (calib, test):
        short = [t for t in texts if _short(t)]
        assert len(short) >= 10 and any(len(t.split()) == 1 for t in short)
        assert all(t[0].isupper() and t[-1] in ".?!" for t in texts)
        assert all(any(c.isalpha() for c in t) and "_" not in t and ">>>" not in t for t in texts)
    assert sum(len(t.split()) >= 8 for t in test) > 50  # plenty of full-length sentences too


def test_sentences_do_not_depend_on_the_hash_seed() -> None:
    code = ("import hashlib, json; from edgeship.zoo.data import sentence_splits; "
            "print(hashlib.sha256(json.dumps(sentence_splits()).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    mine = hashlib.sha256(json.dumps(zdata.sentence_splits()).encode()).hexdigest()
    assert other.stdout.strip() == mine


@pytest.fixture(scope="module")
def sentences_test():
    return load_data("data:sentences:test", BERT)


def test_sentences_are_tokenised_alone_at_natural_length(sentences_test) -> None:
    ds = sentences_test
    assert ds.info["texts"] == list(zdata.sentence_splits()["test"]) and len(ds) == len(ds.info["texts"])
    lengths = []
    for sample, text in zip(ds, ds.info["texts"]):
        ids = sample["input_ids"]
        assert ids.dtype == np.int64 and ids.shape[0] == 1 and set(sample) == set(BERT.input_names)
        assert ids[0, 0] == 101 and ids[0, -1] == 102  # [CLS] ... [SEP], no padding after it
        assert sample["attention_mask"].all() and not sample["token_type_ids"].any()
        lengths.append(ids.shape[1])
        if _short(text):
            assert ids.shape[1] <= 8
    assert min(lengths) <= 6 and max(lengths) >= 25  # one-word sentences: [CLS] word(s) . [SEP]
    from edgeship.zoo.models import tokenizer

    text = ds.info["texts"][0]
    assert tokenizer().decode(ds.samples[0]["input_ids"][0], skip_special_tokens=True) == \
        tokenizer().decode(tokenizer()(text)["input_ids"], skip_special_tokens=True)


def test_sentences_fixed_batch_for_benchmarks(sentences_test) -> None:
    b = sentences_test.batch(4, 32)
    assert set(b) == set(BERT.input_names) and all(v.shape == (4, 32) for v in b.values())
    assert (b["attention_mask"].sum(axis=1) < 32).any()  # short sentences are padded
    longest = sentences_test.batch(3)
    n = max(s["input_ids"].shape[1] for s in sentences_test.samples[:3])
    assert longest["input_ids"].shape == (3, n)
    wrapped = sentences_test.batch(len(sentences_test) + 2, 16)
    np.testing.assert_array_equal(wrapped["input_ids"][-1], wrapped["input_ids"][1])


def test_sentences_fit_the_model_inputs() -> None:
    two = load_data("data:sentences:calib", _io(("input_ids", "int32", ("b", "s")), ("attention_mask", "int32",
                                                                                    ("b", "s"))), limit=5)
    assert set(two.samples[0]) == {"input_ids", "attention_mask"} and two.samples[0]["input_ids"].dtype == np.int32
    assert two.info["texts"] == list(zdata.sentence_splits()["calib"][:5])
    fixed = load_data("data:sentences", _io(("input_ids", "int64", (1, 32)), ("attention_mask", "int64", (1, 32))),
                      limit=6)
    assert all(s["input_ids"].shape == (1, 32) for s in fixed)
    assert fixed.batch(1)["input_ids"].shape == (1, 32)


@pytest.mark.parametrize("io, words", [
    (IMAGE_NCHW, "input_ids"),
    (_io(("input_ids", "int64", ("b", "s")), ("pixel_values", "float32", ("b", 3, 8, 8))), "pixel_values"),
    (_io(("input_ids", "float32", ("b", "s"))), "integer token ids"),
    (_io(("input_ids", "int64", ("b", "s", 4))), "3 dims"),
])
def test_sentences_refuse_models_they_do_not_fit(io: IOSpec, words: str) -> None:
    with pytest.raises(BadInput, match=words) as err:
        load_data("data:sentences", io)
    assert "\n" not in str(err.value)
