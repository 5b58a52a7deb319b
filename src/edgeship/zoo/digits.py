"""scikit-learn's 8×8 digits, split exactly as ``zoo:digits-cnn`` was trained, with labels:

- ``data:digits-train`` — the labelled TRAIN split (1347 images), what compression fine-tunes on;
- ``data:digits-calib`` — the first 256 of the TRAIN split, for calibration;
- ``data:digits-test`` — the held-out quarter (450) that zoo:digits-cnn never saw in training.

Pixels are scaled /16 to [0, 1] and fitted to the model's layout: [N,1,8,8], [N,8,8,1], [N,8,8] or
[N,64].
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset, register_data
from edgeship.core.errors import BadInput
from edgeship.zoo.data import Shapes, check_shapes, no_split, single_float_input

# The split zoo:digits-cnn is trained on; part of its cache key (see edgeship.zoo.digits_cnn.digits_recipe).
DIGITS_SPLIT = {"test_size": 0.25, "random_state": 0, "stratify": True}
DIGITS_CALIB = 256


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): float32 pixels/16 as [N, 1, 8, 8] and int64 labels (read-only).

    Kept in the user cache folder (``EDGESHIP_CACHE``) under a key of scikit-learn's version and the
    split: importing scikit-learn to load and split them cost about 2 s in every process that used
    them (an export's parity check, each sweep worker). A damaged file is made again."""
    from edgeship.core.registry import installed_version
    from edgeship.zoo.base import cache_dir, through_cache

    key = hashlib.sha256(json.dumps({"sklearn": installed_version("scikit-learn"), "split": DIGITS_SPLIT,
                                     "scale": "pixels/16"}, sort_keys=True).encode()).hexdigest()[:16]

    def read(path: Path) -> tuple[np.ndarray, ...]:
        with np.load(path, allow_pickle=False) as f:
            return tuple(np.ascontiguousarray(f[k]) for k in DIGITS_PARTS)

    def write(arrays: tuple[np.ndarray, ...], path: Path) -> None:
        np.savez(path, **dict(zip(DIGITS_PARTS, arrays, strict=True)))

    arrays = through_cache(cache_dir() / "data" / f"digits-{key}.npz", read, _split_digits, write)
    for arr in arrays:
        arr.flags.writeable = False
    return arrays  # type: ignore[return-value]


DIGITS_PARTS = ("x_train", "y_train", "x_test", "y_test")


def _split_digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    parts = train_test_split(x, y, test_size=DIGITS_SPLIT["test_size"], random_state=DIGITS_SPLIT["random_state"],
                             stratify=y if DIGITS_SPLIT["stratify"] else None)
    x_train, x_test, y_train, y_test = (np.ascontiguousarray(p) for p in parts)
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


def _digits(source: str, x: np.ndarray, y: np.ndarray, io: IOSpec, limit: int | None,
            shapes: Shapes | None) -> Dataset:
    spec, shape = single_float_input(source, io, check_shapes(io, shapes), "digit image")
    convert = _digits_layout(spec, shape, source)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    # A copy, so the samples are writable and never alias the cached arrays.
    arr = np.array(convert(x), dtype=np.dtype(spec.dtype))
    samples = [{spec.name: arr[i:i + 1]} for i in range(len(arr))]
    return Dataset(f"data:{source}", samples, labels=np.array(y),
                   info={"classes": [str(i) for i in range(10)], "scaling": "pixels/16"})


DigitsArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# name -> (description, the images and labels of digits_arrays() it holds)
DIGITS_SETS: dict[str, tuple[str, Callable[[DigitsArrays], tuple[np.ndarray, np.ndarray]]]] = {
    "digits-train": ("the labelled scikit-learn 8×8 digits TRAIN split (1347) that zoo:digits-cnn was trained on "
                     "(pixels/16), for fine-tuning, distillation and QAT", lambda a: (a[0], a[1])),
    "digits-calib": (f"{DIGITS_CALIB} scikit-learn 8×8 digits from zoo:digits-cnn's training split (pixels/16), "
                     "for calibration", lambda a: (a[0][:DIGITS_CALIB], a[1][:DIGITS_CALIB])),
    "digits-test": ("the held-out scikit-learn 8×8 digits (450, with labels) that zoo:digits-cnn never saw in "
                    "training (pixels/16)", lambda a: (a[2], a[3])),
}


def _register(name: str, description: str, rows: Callable[[DigitsArrays], tuple[np.ndarray, np.ndarray]]) -> None:
    @register_data(name, description)
    def load(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None) -> Dataset:
        no_split(name, split, "use data:digits-train, data:digits-calib or data:digits-test")
        x, y = rows(digits_arrays())
        return _digits(name, x, y, io, limit, shapes)


for _name, (_description, _rows) in DIGITS_SETS.items():
    _register(_name, _description, _rows)
