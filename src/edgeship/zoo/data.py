"""What the bundled data sets share: fitting themselves to a model's inputs.

The data sets live one per module and register with ``edgeship.core.data.register_data`` (read
through the ``edgeship.data`` entry points in pyproject.toml), all real and all offline:

- ``data:images[:calib|:select|:test]`` (``zoo/images.py``) — crops (close-ups, low light, signs) of real photographs
  that ship with scikit-image and scikit-learn; the three splits come from different photos;
- ``data:digits-calib`` / ``data:digits-test`` / ``data:digits-train`` (``zoo/digits.py``) —
  scikit-learn's 8×8 digits, split exactly as ``zoo:digits-cnn`` was trained (with labels);
- ``data:sentences[:calib|:select|:test]`` (``zoo/sentences.py``) — the kinds of text users send (prose from the
  standard library, replies, questions, names, numbers, code ...), disjoint splits;
- ``data:docstrings`` (``zoo/docstrings.py``) — a large training corpus of docstring sentences of the
  installed Python code, never a ``data:sentences`` test sentence.

Every source is deterministic (same arrays in every process, whatever the hash seed), keeps its raw
material in memory for the process, and fits itself to the model's inputs (names, dtypes, layout,
fixed sizes), or raises BadInput saying why it cannot. A new data set is one module here with
``@register_data`` on its loader, named in pyproject's ``edgeship.data`` entry points.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput

Shapes = dict[str, tuple[int, ...]]


def check_shapes(io: IOSpec, shapes: Shapes | None) -> Shapes:
    """``--shape`` overrides, refused when they name no input of the model."""
    shapes = shapes or {}
    unknown = sorted(set(shapes) - set(io.input_names))
    if unknown:
        raise BadInput(f"--shape names {', '.join(unknown)}, not inputs of the model ({', '.join(io.input_names)})")
    return shapes


def check_split(name: str, split: str | None, splits: tuple[str, ...], default: str) -> str:
    """The split asked for (or the default), refused when the data set has no such split."""
    split = split or default
    if split not in splits:
        raise BadInput(f"data:{name} has no split {split!r}; splits: {', '.join(splits)}")
    return split


def no_split(name: str, split: str | None, hint: str = "") -> None:
    """Refuse a split for a data set that has none (``hint``: what to use instead)."""
    if split:
        raise BadInput(f"data:{name} has no splits (got {split!r}){'; ' + hint if hint else ''}")


def single_float_input(source: str, io: IOSpec, shapes: Shapes, what: str) -> tuple[TensorSpec, tuple[Any, ...]]:
    """The model's one floating-point input and its shape (``--shape`` wins over the model's dims)."""
    if len(io.inputs) != 1:
        raise BadInput(f"data:{source} feeds one {what} input; the model has {len(io.inputs)} inputs "
                       f"({', '.join(io.input_names)}); give an .npz with arrays named like them instead")
    spec = io.inputs[0]
    if np.dtype(spec.dtype).kind != "f":
        raise BadInput(f"data:{source} gives float {what}s; the model's input {spec.name!r} is {spec.dtype}; "
                       "use data matching the model (for example data:sentences for token ids)")
    return spec, tuple(shapes.get(spec.name, spec.shape))


# bucket edges of a length distribution: ≤4, 5-8, 9-16, 17-32, 33-64, 65-128, more
LENGTH_BUCKETS = (4, 8, 16, 32, 64, 128)


def length_distribution(lengths: list[int] | list[float], unit: str) -> dict[str, Any]:
    """How long a data set's samples are: n, min, percentiles, max and a histogram by powers of two
    (``unit`` says in what: tokens, pixels of the crop's side, ...)."""
    arr = np.asarray(lengths, dtype=np.float64)
    if arr.size == 0:
        return {"unit": unit, "n": 0}
    pct = {f"p{q}": float(np.percentile(arr, q)) for q in (10, 25, 50, 75, 90)}
    edges = (0, *LENGTH_BUCKETS)
    hist = {f"{lo + 1}-{hi}": int(((arr > lo) & (arr <= hi)).sum()) for lo, hi in itertools.pairwise(edges)}
    hist[f">{LENGTH_BUCKETS[-1]}"] = int((arr > LENGTH_BUCKETS[-1]).sum())
    return {"unit": unit, "n": int(arr.size), "min": float(arr.min()), **pct, "max": float(arr.max()),
            "histogram": hist}
