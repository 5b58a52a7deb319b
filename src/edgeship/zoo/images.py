"""``data:images[:calib|:test]``: crops, flips and rescales of real photographs that ship with
scikit-image and scikit-learn, RGB scaled to [-1, 1], NCHW or NHWC as the model wants. The two splits
come from different photos (none is in both); every crop is deterministic.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset, register_data
from edgeship.core.errors import BadInput
from edgeship.zoo.data import Shapes, check_shapes, check_split, single_float_input

IMAGE_SIZE = 224
CROPS_PER_PHOTO = 16
# (package, file under its data folder, split): split by photo, so no photo is in both. The files are
# those behind skimage.data.astronaut(), coffee(), ... and sklearn's load_sample_image(); they are
# read directly with Pillow (what those loaders use) to skip importing skimage.io and sklearn.datasets.
# skimage's `cat` is `chelsea` again and is left out for that reason; `colorwheel` and `logo` are
# drawings, not photographs.
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "astronaut.png", "calib"), ("skimage", "coffee.png", "test"),
    ("skimage", "rocket.jpg", "calib"), ("skimage", "chelsea.png", "test"),
    ("skimage", "coins.png", "calib"), ("skimage", "camera.png", "test"),
    ("sklearn", "china.jpg", "calib"), ("sklearn", "flower.jpg", "test"),
    ("skimage", "hubble_deep_field.jpg", "calib"), ("skimage", "motorcycle_left.png", "test"),
    ("skimage", "ihc.png", "calib"), ("skimage", "retina.jpg", "test"),
    ("skimage", "brick.png", "calib"), ("skimage", "gravel.png", "test"),
    ("skimage", "grass.png", "calib"), ("skimage", "moon.png", "test"),
    ("skimage", "text.png", "calib"), ("skimage", "page.png", "test"),
    ("skimage", "clock_motion.png", "calib"), ("skimage", "cell.png", "test"),
)
IMAGE_SPLITS = ("calib", "test")
_DATA_FOLDERS = {"skimage": ("skimage", "data"), "sklearn": ("sklearn", "datasets", "images")}


def photo_path(package: str, filename: str) -> Path:
    """Where an installed package keeps a bundled photo (found without importing the package)."""
    import importlib.util

    top, *sub = _DATA_FOLDERS[package]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(f"data:images needs {top} for its photos; install it: pip install scikit-image scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations)), *sub, filename)
    if not path.is_file():
        raise BadInput(f"data:images: photo {str(path)!r} is missing; reinstall {top}")
    return path


def photo(package: str, filename: str) -> np.ndarray:
    """One photo as uint8 RGB [H, W, 3] (grey photos are repeated over the three channels)."""
    from PIL import Image

    with Image.open(photo_path(package, filename)) as im:
        img = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img, dtype=np.uint8)


def _photo_name(filename: str) -> str:
    return filename.rpartition(".")[0]


def _crop_boxes(name: str, height: int, width: int) -> list[tuple[tuple[int, int, int, int], bool]]:
    """Square crop boxes (left, top, right, bottom) and flips, seeded by the photo's name.

    Crop 0 is the centre square at full size (the usual evaluation crop), crop 1 its mirror; the
    others take 35-100 % of the short side at random places (so they are rescaled by different
    factors when resized to 224) and are mirrored half of the time.
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # crc32, not hash(): same in every process
    short = min(height, width)
    boxes = []
    for i in range(CROPS_PER_PHOTO):
        if i < 2:
            side, flip = short, i == 1
            left, top = (width - side) // 2, (height - side) // 2
        else:
            side = max(16, round(short * float(rng.uniform(0.35, 1.0))))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            flip = bool(rng.random() < 0.5)
        boxes.append(((left, top, left + side, top + side), flip))
    return boxes


@functools.lru_cache(maxsize=1)
def image_crops() -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Per split: uint8 crops [N, 224, 224, 3] (read-only) and each crop's id ``photo#index``.

    Crops are interleaved across photos (crop 0 of every photo, then crop 1, ...) so that the first
    N of a split cover as many photos as possible.
    """
    from PIL import Image

    per_photo: dict[str, list[tuple[str, list[np.ndarray]]]] = {s: [] for s in IMAGE_SPLITS}
    for package, filename, split in PHOTOS:
        name = _photo_name(filename)
        img = Image.fromarray(photo(package, filename))
        crops = []
        for box, flip in _crop_boxes(name, img.height, img.width):
            crop = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR, box=box)
            if flip:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crops.append(np.asarray(crop))
        per_photo[split].append((name, crops))
    out = {}
    for split, photos in per_photo.items():
        arrays, ids = [], []
        for i in range(CROPS_PER_PHOTO):
            for name, crops in photos:
                arrays.append(crops[i])
                ids.append(f"{name}#{i}")
        stacked = np.stack(arrays)
        stacked.flags.writeable = False  # shared by every load in this process
        out[split] = (stacked, tuple(ids))
    return out


def _image_layout(spec: TensorSpec, shape: tuple[Any, ...]) -> tuple[str, int, int]:
    """("NCHW" or "NHWC", height, width) for a 4-D image input; symbolic sizes become 224."""
    if len(shape) != 4:
        raise BadInput(f"data:images gives 4-D images (NCHW or NHWC); the model's input {spec.name!r} has "
                       f"{len(shape)} dims {list(shape)}; use data matching the model")
    if shape[1] == 3 or (not isinstance(shape[1], int) and not isinstance(shape[3], int)):
        layout, (h, w) = "NCHW", shape[2:4]
    elif shape[3] == 3:
        layout, (h, w) = "NHWC", shape[1:3]
    else:
        raise BadInput(f"data:images gives RGB images (3 channels); the model's input {spec.name!r} has shape "
                       f"{list(shape)} with no axis of 3 channels at position 1 or 3")
    return layout, h if isinstance(h, int) else IMAGE_SIZE, w if isinstance(w, int) else IMAGE_SIZE


@register_data("images", "crops, flips and rescales of real photos from scikit-image and scikit-learn; "
               "RGB scaled to [-1, 1], NCHW or NHWC as the model wants; calib and test come from different photos",
               splits=IMAGE_SPLITS, default_split="test")
def images(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None) -> Dataset:
    split = check_split("images", split, IMAGE_SPLITS, "test")
    spec, shape = single_float_input("images", io, check_shapes(io, shapes), "image")
    layout, height, width = _image_layout(spec, shape)
    crops, ids = image_crops()[split]
    if limit is not None:
        crops, ids = crops[:limit], ids[:limit]
    if (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
        from PIL import Image

        crops = np.stack([np.asarray(Image.fromarray(c).resize((width, height), Image.Resampling.BILINEAR))
                          for c in crops])
    x = (crops.astype(np.float32) / 255.0 - 0.5) / 0.5
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x, dtype=np.dtype(spec.dtype))
    samples = [{spec.name: x[i:i + 1]} for i in range(len(x))]
    photos = sorted({i.partition("#")[0] for i in ids})
    return Dataset(f"data:images:{split}", samples,
                   info={"crops": list(ids), "photos": photos, "layout": layout, "size": [height, width],
                         "scaling": "(x/255-0.5)/0.5"})
