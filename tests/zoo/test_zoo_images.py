"""data:images: real photos' crops, split by photo, deterministic, fitted to the model's layout."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import load_data
from edgeship.core.errors import BadInput
from edgeship.zoo import images as zimages


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


IMAGE_NCHW = _io(("input", "float32", ("batch", 3, 224, 224)))
BERT = _io(*((n, "int64", ("batch", "sequence")) for n in ("input_ids", "attention_mask", "token_type_ids")))


@pytest.fixture(scope="module")
def image_splits() -> dict[str, object]:
    return {s: load_data(f"data:images:{s}", IMAGE_NCHW) for s in ("calib", "select", "test")}


def test_images_split_by_photo(image_splits) -> None:
    calib, select, test = image_splits["calib"], image_splits["select"], image_splits["test"]
    for a, b in ((calib, select), (calib, test), (select, test)):
        assert set(a.info["photos"]).isdisjoint(b.info["photos"])
        # No pixel-identical crop in two parts either.
        digest = {hashlib.sha256(s["input"].tobytes()).hexdigest() for s in a}
        assert not digest & {hashlib.sha256(s["input"].tobytes()).hexdigest() for s in b}
    assert len(calib.info["photos"]) >= 8 and len(select.info["photos"]) >= 6 and len(test.info["photos"]) >= 7
    assert {"coffee", "chelsea", "motorcycle_left", "motorcycle_right"} <= set(test.info["photos"])  # a stereo pair
    photos = {c.partition("#")[0] for c in test.info["crops"] if not c.startswith("sign#")}
    assert photos == set(test.info["photos"])
    assert len(calib) + len(select) + len(test) >= 350


def test_images_have_the_kinds_cameras_send(image_splits) -> None:
    for ds in image_splits.values():
        kinds = ds.info["kinds"]
        counts = ds.info["kind_counts"]
        assert counts["text"] == zimages.TEXT_IMAGES and counts["close-up"] >= 18 and counts["low-light"] >= 18
        assert {"outdoor", "text"} <= set(ds.info["subjects"])
        level = [float((s["input"] + 1).mean() / 2 * 255) for s in ds]
        dark = [lv for lv, k in zip(level, kinds) if k == "low-light"]
        assert max(dark) < 60 and np.median(level) > 2 * max(dark) / 1.5  # low light is really dark
        sides = ds.info["distribution"]
        assert sides["unit"] == "source pixels per crop side" and sides["n"] == len(ds) and sides["min"] < sides["max"]
        assert ds.info["brightness"]["p10"] < 30 < ds.info["brightness"]["p90"]
        assert len(ds.ids) == len(ds) and ds.ids[0].endswith(" centre") and "'" in ds.ids[-1]  # a sign names its text
    close = [s for s, k in zip(image_splits["test"].samples, image_splits["test"].info["kinds"]) if k == "close-up"]
    assert len({c["input"].tobytes() for c in close}) == len(close)


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
    assert len(set(coffee)) == len(coffee) == zimages.CROPS_PER_PHOTO


def test_images_are_deterministic(image_splits) -> None:
    rebuilt = zimages._crop_table.__wrapped__()  # a fresh build, bypassing the per-process cache
    for split in ("calib", "select", "test"):
        arrays, ids = zimages.image_crops()[split]
        assert tuple(r["id"] for r in rebuilt[split][1]) == ids
        np.testing.assert_array_equal(rebuilt[split][0], arrays)
    again = load_data("data:images:test", IMAGE_NCHW)
    assert all(np.array_equal(a["input"], b["input"]) for a, b in zip(again, image_splits["test"]))


def test_images_photos_are_the_packages_photos() -> None:
    from skimage import data as skdata

    np.testing.assert_array_equal(zimages.photo("skimage", "coffee.png"), skdata.coffee())
    grey = zimages.photo("skimage", "camera.png")
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
