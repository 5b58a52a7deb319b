"""``data:images[:calib|:select|:test]``: crops of real photographs that ship with scikit-image and
scikit-learn, of the kinds a camera sends: whole views and mirrored ones, crops at many scales,
close-ups, low light (darkened, with sensor noise), and text (signs drawn over the split's own
photos); RGB scaled to [-1, 1], NCHW or NHWC as the model wants. The three splits come from
different photos (none is in two; a stereo pair counts as one photo); every crop is deterministic.
``calib`` sets quantization ranges, ``select`` chooses among variants (mixed precision, searches),
``test`` gives the held-out verdict. The data set's ``info`` holds each crop's kind and the
distribution of crop sizes (source pixels per side) and brightness.
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
from edgeship.zoo.data import Shapes, check_shapes, check_split, length_distribution, single_float_input

IMAGE_SIZE = 224
# kinds of the 16 crops of every photo, in crop order: 0 the centre square, 1 its mirror
CROP_KINDS = ("centre", "mirror") + ("crop",) * 8 + ("close-up",) * 3 + ("low-light",) * 3
CROPS_PER_PHOTO = len(CROP_KINDS)
TEXT_IMAGES = 8  # signs drawn over the split's photos, per split
# (package, file under its data folder, split, what it shows): split by photo, so no photo is in two
# splits. The files are those behind skimage.data.astronaut(), coffee(), ... and sklearn's
# load_sample_image(); they are read directly with Pillow (what those loaders use) to skip
# importing skimage.io and sklearn.datasets. skimage's `cat` is `chelsea` again and is left out for
# that reason; `colorwheel` and `logo` are drawings, not photographs; motorcycle_left and _right are
# one stereo pair: both in test.
PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("skimage", "astronaut.png", "calib", "person"), ("skimage", "rocket.jpg", "calib", "outdoor"),
    ("skimage", "coins.png", "calib", "close-up"), ("sklearn", "china.jpg", "calib", "outdoor"),
    ("skimage", "hubble_deep_field.jpg", "calib", "night sky"), ("skimage", "ihc.png", "calib", "microscope"),
    ("skimage", "brick.png", "calib", "texture"), ("skimage", "text.png", "calib", "text"),
    ("skimage", "camera.png", "select", "person"), ("skimage", "clock_motion.png", "select", "object"),
    ("skimage", "retina.jpg", "select", "medical"), ("skimage", "gravel.png", "select", "texture"),
    ("skimage", "cell.png", "select", "microscope"), ("skimage", "grass.png", "select", "outdoor"),
    ("skimage", "coffee.png", "test", "object"), ("skimage", "chelsea.png", "test", "animal"),
    ("sklearn", "flower.jpg", "test", "outdoor"), ("skimage", "motorcycle_left.png", "test", "outdoor"),
    ("skimage", "motorcycle_right.png", "test", "outdoor"), ("skimage", "moon.png", "test", "night sky"),
    ("skimage", "page.png", "test", "text"),
)
IMAGE_SPLITS = ("calib", "select", "test")
# what the text images say, per split (signs, labels, screens people photograph)
SIGN_TEXTS = {
    "calib": ("OPEN", "EXIT", "SALE 50%", "Platform 3", "No Parking", "Coffee & Tea", "Room 214", "STOP"),
    "select": ("CLOSED", "Push", "Gate B12", "Fresh Bread", "Wi-Fi: guest", "Keep Left", "Aisle 7", "PHARMACY"),
    "test": ("Welcome", "Pull", "Bus 42", "Toilets", "Sold Out", "Menu", "Check-in 10:00", "DANGER"),
}
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
    crops take 35-100 % of the short side at random places (so they are rescaled by different
    factors when resized to 224), the close-ups 10-25 %, the low-light ones 40-100 %; all but the
    first two are mirrored half of the time.
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # crc32, not hash(): same in every process
    short = min(height, width)
    scale = {"crop": (0.35, 1.0), "close-up": (0.10, 0.25), "low-light": (0.4, 1.0)}
    boxes = []
    for i, kind in enumerate(CROP_KINDS):
        if i < 2:
            side, flip = short, i == 1
            left, top = (width - side) // 2, (height - side) // 2
        else:
            side = max(16, round(short * float(rng.uniform(*scale[kind]))))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            flip = bool(rng.random() < 0.5)
        boxes.append(((left, top, left + side, top + side), flip))
    return boxes


def low_light(crop: np.ndarray, seed: int) -> np.ndarray:
    """A crop as a camera takes it in dim light: 8-30 % of the light, a gamma of 1.3-2.0 and sensor
    noise (σ 2-6 levels), back in uint8."""
    rng = np.random.default_rng(seed)
    x = crop.astype(np.float64) / 255.0
    x = (x ** float(rng.uniform(1.3, 2.0))) * float(rng.uniform(0.08, 0.3))
    x = x * 255.0 + rng.normal(0.0, float(rng.uniform(2.0, 6.0)), x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def sign(background: np.ndarray, text: str, seed: int) -> np.ndarray:
    """``text`` drawn large on a plain panel over a photo crop, the way a sign or a label is
    photographed (the panel's colour, the text's size and place vary with ``seed``)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    img = Image.fromarray(background)
    draw = ImageDraw.Draw(img)
    size = int(rng.integers(26, 52))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    x = int(rng.integers(8, max(9, IMAGE_SIZE - w - 8)))
    y = int(rng.integers(8, max(9, IMAGE_SIZE - h - 8)))
    panel = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = (0, 0, 0) if sum(panel) > 380 else (255, 255, 255)
    draw.rectangle((x - 8, y - 8, x + w + 8, y + h + 8), fill=panel)
    draw.text((x - left, y - top), text, fill=ink, font=font)
    return np.asarray(img)


@functools.lru_cache(maxsize=1)
def image_crops() -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Per split: uint8 crops [N, 224, 224, 3] (read-only) and each crop's id ``photo#index``
    (text images: ``sign#index``).

    Crops are interleaved across photos (crop 0 of every photo, then crop 1, ...) so that the first
    N of a split cover as many photos and kinds as possible; the split's text images come last.
    """
    table = _crop_table()
    return {split: (arrays, tuple(r["id"] for r in rows)) for split, (arrays, rows) in table.items()}


@functools.lru_cache(maxsize=1)
def _crop_table() -> dict[str, tuple[np.ndarray, tuple[dict[str, Any], ...]]]:
    """Per split: the crops and, per crop, its id, photo, kind, what the photo shows and the side of
    the crop in source pixels."""
    from PIL import Image

    per_photo: dict[str, list[tuple[str, list[tuple[np.ndarray, dict[str, Any]]]]]] = {s: [] for s in IMAGE_SPLITS}
    for package, filename, split, subject in PHOTOS:
        name = _photo_name(filename)
        img = Image.fromarray(photo(package, filename))
        crops = []
        for i, (box, flip) in enumerate(_crop_boxes(name, img.height, img.width)):
            crop = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR, box=box)
            if flip:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            arr = np.asarray(crop)
            if CROP_KINDS[i] == "low-light":
                arr = low_light(arr, zlib.crc32(f"{name}#{i}".encode()))
            crops.append((arr, {"id": f"{name}#{i}", "photo": name, "kind": CROP_KINDS[i], "subject": subject,
                                "side": box[2] - box[0]}))
        per_photo[split].append((name, crops))
    out = {}
    for split, photos in per_photo.items():
        arrays, rows = [], []
        for i in range(CROPS_PER_PHOTO):
            for _, crops in photos:
                arrays.append(crops[i][0])
                rows.append(crops[i][1])
        for j, text in enumerate(SIGN_TEXTS[split]):
            _, crops = photos[j % len(photos)]
            background, meta = crops[2 + j % 8]  # one of the photo's plain crops
            arrays.append(sign(background, text, zlib.crc32(f"sign:{split}:{text}".encode())))
            rows.append({"id": f"sign#{j}", "photo": meta["photo"], "kind": "text", "subject": "text",
                         "side": meta["side"], "text": text})
        stacked = np.stack(arrays)
        stacked.flags.writeable = False  # shared by every load in this process
        out[split] = (stacked, tuple(rows))
    return out


def image_layout(spec: TensorSpec, shape: tuple[Any, ...]) -> tuple[str, int, int]:
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


@register_data("images", "crops of real photos from scikit-image and scikit-learn (whole, mirrored, at many scales, "
               "close-ups, low light, signs with text); RGB scaled to [-1, 1], NCHW or NHWC as the model wants; calib, "
               "select and test come from different photos", splits=IMAGE_SPLITS, default_split="test")
def images(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None) -> Dataset:
    split = check_split("images", split, IMAGE_SPLITS, "test")
    spec, shape = single_float_input("images", io, check_shapes(io, shapes), "image")
    layout, height, width = image_layout(spec, shape)
    crops, rows = _crop_table()[split]
    if limit is not None:
        crops, rows = crops[:limit], rows[:limit]
    brightness = crops.reshape(len(crops), -1).mean(axis=1)
    if (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
        from PIL import Image

        crops = np.stack([np.asarray(Image.fromarray(c).resize((width, height), Image.Resampling.BILINEAR))
                          for c in crops])
    x = (crops.astype(np.float32) / 255.0 - 0.5) / 0.5
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x, dtype=np.dtype(spec.dtype))
    samples = [{spec.name: x[i:i + 1]} for i in range(len(x))]
    photos = sorted({r["photo"] for r in rows})
    kinds = [r["kind"] for r in rows]
    return Dataset(f"data:images:{split}", samples,
                   info={"crops": [r["id"] for r in rows], "photos": photos, "kinds": kinds,
                         "kind_counts": {k: kinds.count(k) for k in dict.fromkeys(kinds)},
                         "subjects": sorted({r["subject"] for r in rows}), "layout": layout, "size": [height, width],
                         "scaling": "(x/255-0.5)/0.5",
                         "distribution": length_distribution([r["side"] for r in rows], "source pixels per crop side"),
                         "brightness": length_distribution([float(b) for b in brightness], "mean level (0-255)")},
                   ids=[f"{r['id']} {r['kind']}" + (f" {r['text']!r}" if "text" in r else "") for r in rows])
