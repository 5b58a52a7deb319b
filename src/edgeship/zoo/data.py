"""Bundled data sets (registered with edgeship.core.data.register_data), all real and all offline.

- ``data:images[:calib|:test]`` — crops, flips and rescales of real photographs that ship with
  scikit-image and scikit-learn; the two splits come from different photos (none is in both);
- ``data:digits-calib`` / ``data:digits-test`` — scikit-learn's 8×8 digits, split exactly as
  ``zoo:digits-cnn`` was trained (calib is part of the training split, test is the held-out split,
  with labels);
- ``data:sentences[:calib|:test]`` — real English sentences taken from the docstrings of a fixed list
  of standard-library modules (parsed, never imported), including very short ones, which are the
  worst cases for quantized text encoders.

Every source is deterministic (same arrays in every process, whatever the hash seed), builds in
about a second, keeps its raw material in memory for the process, and fits itself to the model's
inputs (names, dtypes, layout, fixed sizes), or raises BadInput saying why it cannot.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import sysconfig
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset, Feeds, register_data
from edgeship.core.errors import BadInput

Shapes = dict[str, tuple[int, ...]]


def _check_shapes(io: IOSpec, shapes: Shapes | None) -> Shapes:
    shapes = shapes or {}
    unknown = sorted(set(shapes) - set(io.input_names))
    if unknown:
        raise BadInput(f"--shape names {', '.join(unknown)}, not inputs of the model ({', '.join(io.input_names)})")
    return shapes


def _no_split(name: str, split: str | None) -> None:
    if split:
        raise BadInput(f"data:{name} has no splits (got {split!r}); use data:digits-calib or data:digits-test")


def _single_float_input(source: str, io: IOSpec, shapes: Shapes, what: str) -> tuple[TensorSpec, tuple[Any, ...]]:
    """The model's one floating-point input and its shape (``--shape`` wins over the model's dims)."""
    if len(io.inputs) != 1:
        raise BadInput(f"data:{source} feeds one {what} input; the model has {len(io.inputs)} inputs "
                       f"({', '.join(io.input_names)}); give an .npz with arrays named like them instead")
    spec = io.inputs[0]
    if np.dtype(spec.dtype).kind != "f":
        raise BadInput(f"data:{source} gives float {what}s; the model's input {spec.name!r} is {spec.dtype}; "
                       "use data matching the model (for example data:sentences for token ids)")
    return spec, tuple(shapes.get(spec.name, spec.shape))


# == images ========================================================================================
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


def _photo(package: str, filename: str) -> np.ndarray:
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
        img = Image.fromarray(_photo(package, filename))
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
    split = split or "test"
    if split not in IMAGE_SPLITS:
        raise BadInput(f"data:images has no split {split!r}; splits: {', '.join(IMAGE_SPLITS)}")
    spec, shape = _single_float_input("images", io, _check_shapes(io, shapes), "image")
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


# == digits ========================================================================================
# The split zoo:digits-cnn is trained on; part of its cache key (see edgeship.zoo.models.digits_recipe).
DIGITS_SPLIT = {"test_size": 0.25, "random_state": 0, "stratify": True}
DIGITS_CALIB = 256


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): float32 pixels/16 as [N, 1, 8, 8] and int64 labels (read-only)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    parts = train_test_split(x, y, test_size=DIGITS_SPLIT["test_size"], random_state=DIGITS_SPLIT["random_state"],
                             stratify=y if DIGITS_SPLIT["stratify"] else None)
    x_train, x_test, y_train, y_test = (np.ascontiguousarray(p) for p in parts)
    for arr in (x_train, y_train, x_test, y_test):
        arr.flags.writeable = False
    return x_train, y_train, x_test, y_test


def _digits_layout(spec: TensorSpec, shape: tuple[Any, ...], source: str) -> Callable[[np.ndarray], np.ndarray]:
    """How to turn [N, 1, 8, 8] into the model's layout: NCHW, NHWC, [N, 8, 8] or flat [N, 64]."""
    layouts: dict[int, tuple[tuple[int, ...], Callable[[np.ndarray], np.ndarray]]] = {
        4: ((1, 8, 8), lambda a: a) if shape[1] == 1 or not isinstance(shape[1], int)
        else ((8, 8, 1), lambda a: a.transpose(0, 2, 3, 1)),
        3: ((8, 8), lambda a: a[:, 0]),
        2: ((64,), lambda a: a.reshape(len(a), 64)),
    }
    if len(shape) not in layouts:
        raise BadInput(f"data:{source} gives 8×8 digit images; the model's input {spec.name!r} has {len(shape)} "
                       f"dims {list(shape)}; it fits [N,1,8,8], [N,8,8,1], [N,8,8] or [N,64]")
    want, convert = layouts[len(shape)]
    for got, dim in zip(shape[1:], want, strict=True):
        if isinstance(got, int) and got != dim:
            raise BadInput(f"data:{source} gives 8×8 digit images; the model's input {spec.name!r} has shape "
                           f"{list(shape)}; it fits [N,1,8,8], [N,8,8,1], [N,8,8] or [N,64]")
    return convert


def _digits(source: str, x: np.ndarray, y: np.ndarray, io: IOSpec, limit: int | None, shapes: Shapes | None,
            with_labels: bool) -> Dataset:
    spec, shape = _single_float_input(source, io, _check_shapes(io, shapes), "digit image")
    convert = _digits_layout(spec, shape, source)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    # A copy, so the samples are writable and never alias the cached arrays.
    arr = np.array(convert(x), dtype=np.dtype(spec.dtype))
    samples = [{spec.name: arr[i:i + 1]} for i in range(len(arr))]
    return Dataset(f"data:{source}", samples, labels=np.array(y) if with_labels else None,
                   info={"classes": [str(i) for i in range(10)], "scaling": "pixels/16"})


@register_data("digits-calib", f"{DIGITS_CALIB} scikit-learn 8×8 digits from zoo:digits-cnn's training split "
               "(pixels/16), for calibration")
def digits_calib(io: IOSpec, split: str | None = None, limit: int | None = None,
                 shapes: Shapes | None = None) -> Dataset:
    _no_split("digits-calib", split)
    x_train, y_train, _, _ = digits_arrays()
    return _digits("digits-calib", x_train[:DIGITS_CALIB], y_train[:DIGITS_CALIB], io, limit, shapes,
                   with_labels=True)


@register_data("digits-test", "the held-out scikit-learn 8×8 digits (450, with labels) that zoo:digits-cnn "
               "never saw in training (pixels/16)")
def digits_test(io: IOSpec, split: str | None = None, limit: int | None = None,
                shapes: Shapes | None = None) -> Dataset:
    _no_split("digits-test", split)
    _, _, x_test, y_test = digits_arrays()
    return _digits("digits-test", x_test, y_test, io, limit, shapes, with_labels=True)


# == sentences =====================================================================================
# Standard-library modules whose docstrings give the sentences; read as source (ast), never
# imported, so nothing runs and the text is the same in every process of this Python version.
SENTENCE_MODULES = (
    "argparse", "ast", "bisect", "calendar", "codecs", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "difflib", "email.message", "enum", "fractions", "ftplib", "functools",
    "gettext", "gzip", "heapq", "http.client", "imaplib", "inspect", "ipaddress", "json", "locale", "logging",
    "mailbox", "os", "pathlib", "pickle", "pprint", "queue", "random", "sched", "selectors", "shlex", "shutil",
    "smtplib", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "tokenize", "traceback", "typing", "unittest.case", "urllib.parse", "uuid", "warnings", "wave", "weakref",
    "webbrowser", "zipfile", "zipimport",
)
SENTENCES_LONG = 360  # 4 words or more, 20-160 characters
SENTENCES_SHORT = 40  # 1-3 words ("Deprecated.", "Read a line."): the hardest inputs for INT8 encoders
SENTENCE_SPLITS = ("calib", "test")
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
# A plain word: letters only, capitalised at most on its first letter (no identifiers such as
# SequenceMatcher or ALL_CAPS), possibly hyphenated or with an apostrophe; single letters only a/A/I.
_PLAIN_WORD = re.compile(r"^(?:[A-Za-z][a-z]+(?:['-][a-z]+)*|[aAI])[,;:]?$")


def _stdlib_file(module: str) -> Path:
    base = Path(sysconfig.get_paths()["stdlib"]) / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise BadInput(f"data:sentences needs the standard library's source for {module!r} (not found under "
                   f"{base.parent}); use a Python installation that ships its .py files")


def _docstrings(module: str) -> list[str]:
    tree = ast.parse(_stdlib_file(module).read_text(encoding="utf-8"))
    docs = []
    for node in ast.walk(tree):  # breadth-first, in source order: deterministic
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                docs.append(doc)
    return docs


def _prose_sentences(doc: str) -> list[str]:
    """Sentences of the prose paragraphs of a docstring (code, lists and tables are skipped)."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        if any(line[:1].isspace() or line.lstrip().startswith((">>>", "...", "-", "*", "|", ":", "="))
               for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        out.extend(s.strip() for s in _SENTENCE_END.split(text))
    return out


def _is_plain(sentence: str) -> bool:
    """Capitalised, ends like a sentence, plain words only (no identifiers, numbers or markup)."""
    if len(sentence) < 2 or sentence[-1] not in ".!?" or not sentence[0].isupper():
        return False
    words = sentence[:-1].split()
    return bool(words) and all(_PLAIN_WORD.match(w) for w in words)


@functools.lru_cache(maxsize=1)
def sentence_splits() -> dict[str, tuple[str, ...]]:
    """{"calib": (...), "test": (...)}: disjoint, each half short and half long sentences alike.

    Sentences are ordered by their sha256 (stable across processes and hash seeds, and it mixes
    the modules); the long and the short ones alternate between the two splits separately so both
    get the same share of short inputs.
    """
    long_, short = set(), set()
    for module in SENTENCE_MODULES:
        for doc in _docstrings(module):
            for s in _prose_sentences(doc):
                if not _is_plain(s):
                    continue
                words = len(s.split())
                if words <= 3:
                    short.add(s)
                elif words >= 4 and 20 <= len(s) <= 160:
                    long_.add(s)

    def stable(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    picked_long = sorted(long_, key=stable)[:SENTENCES_LONG]
    picked_short = sorted(short, key=stable)[:SENTENCES_SHORT]
    if len(picked_long) < SENTENCES_LONG or len(picked_short) < SENTENCES_SHORT:
        raise BadInput(f"data:sentences found only {len(picked_long)} long and {len(picked_short)} short "
                       f"sentences in this Python's standard library (need {SENTENCES_LONG} and {SENTENCES_SHORT})")
    splits: dict[str, list[str]] = {s: [] for s in SENTENCE_SPLITS}
    for group in (picked_long, picked_short):
        for i, s in enumerate(group):
            splits[SENTENCE_SPLITS[i % 2]].append(s)
    # Interleave short ones among the long ones so a --limit still sees a few short sentences.
    return {name: tuple(_interleave(texts)) for name, texts in splits.items()}


def _interleave(texts: list[str]) -> list[str]:
    short = [t for t in texts if len(t.split()) <= 3]
    long_ = [t for t in texts if len(t.split()) > 3]
    step = max(1, len(long_) // max(1, len(short)))
    out: list[str] = []
    for i, s in enumerate(short):
        out.extend(long_[i * step:(i + 1) * step])
        out.append(s)
    out.extend(long_[len(short) * step:])
    return out


TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _token_inputs(io: IOSpec, shapes: Shapes) -> tuple[list[TensorSpec], int | None]:
    """The model's token inputs and its fixed sequence length (None when the length is free)."""
    others = [n for n in io.input_names if n not in TOKEN_INPUTS]
    if others or "input_ids" not in io.input_names:
        raise BadInput(f"data:sentences gives BERT token inputs ({', '.join(TOKEN_INPUTS)}); the model's inputs are "
                       f"{', '.join(io.input_names)}; use data matching the model (data:images, data:digits-test, "
                       "an .npz)")
    specs = list(io.inputs)
    seq: int | None = None
    for spec in specs:
        shape = tuple(shapes.get(spec.name, spec.shape))
        if np.dtype(spec.dtype).kind not in "iu":
            raise BadInput(f"data:sentences gives integer token ids; the model's input {spec.name!r} is {spec.dtype}")
        if len(shape) != 2:
            raise BadInput(f"data:sentences gives [batch, sequence] token arrays; the model's input {spec.name!r} "
                           f"has {len(shape)} dims {list(shape)}")
        if isinstance(shape[1], int):
            if seq is not None and seq != shape[1]:
                raise BadInput(f"the model's token inputs have different fixed lengths ({seq} and {shape[1]}); "
                               "fix them with --shape NAME:1,SEQ")
            seq = shape[1]
    return specs, seq


def _tokenize(texts: list[str], specs: list[TensorSpec], length: int | None) -> Feeds:
    """Tokenise with the MiniLM tokenizer; padded/truncated to ``length`` or, if None, to the longest."""
    from edgeship.zoo.models import tokenizer

    enc = tokenizer()(texts, padding="max_length" if length else "longest", truncation=True,
                      max_length=length or MAX_TOKENS, return_tensors="np", return_token_type_ids=True)
    return {s.name: np.ascontiguousarray(enc[s.name], dtype=np.dtype(s.dtype)) for s in specs}


@register_data("sentences", f"{SENTENCES_LONG + SENTENCES_SHORT} real English sentences from standard-library "
               "docstrings (some of 1-3 words), tokenised one at a time with the MiniLM tokenizer; "
               "calib and test are disjoint", splits=SENTENCE_SPLITS, default_split="test")
def sentences(io: IOSpec, split: str | None = None, limit: int | None = None,
              shapes: Shapes | None = None) -> Dataset:
    split = split or "test"
    if split not in SENTENCE_SPLITS:
        raise BadInput(f"data:sentences has no split {split!r}; splits: {', '.join(SENTENCE_SPLITS)}")
    specs, seq = _token_inputs(io, _check_shapes(io, shapes))
    texts = list(sentence_splits()[split])
    if limit is not None:
        texts = texts[:limit]
    # Each sentence alone at its natural length (or the model's fixed length): padding would hide
    # exactly the short-input errors the gates are meant to catch.
    samples = [_tokenize([t], specs, seq) for t in texts]

    def fixed_batch(batch: int, seq_len: int | None = None) -> Feeds:
        if batch < 1 or (seq_len is not None and seq_len < 2):
            raise BadInput(f"batch {batch} / sequence {seq_len}: give a batch of at least 1 and a sequence of "
                           "at least 2 tokens ([CLS] and [SEP])")
        rows = [texts[i % len(texts)] for i in range(batch)]
        return _tokenize(rows, specs, seq_len or seq)

    return Dataset(f"data:sentences:{split}", samples, fixed_batch=fixed_batch,
                   info={"texts": texts, "short": sum(len(t.split()) <= 3 for t in texts),
                         "tokenizer": "all-MiniLM-L6-v2 (BERT uncased)"})
