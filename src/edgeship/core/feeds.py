"""Feeds from files, for any model: what an ``.npz``, a folder of ``.npy`` files or a folder of
``.npz`` files (one per call) holds, decided by comparing each array's rank with the model's input.

For each input of rank *r* (a scalar has rank 0), its array is one of:

- **on an extra leading axis** (rank *r* + 1): one sample per entry — ``state`` of ``[6, 2, 1, 128]``
  for an input ``[2, 1, 128]`` is 6 samples;
- **rows of the batch** (rank *r*, the model's first dim free, or fixed to 1 while the array has
  more): one sample per row, as before — ``x`` of ``[12, 16]`` for ``[batch, 16]`` is 12 samples;
- **one feed** (rank *r*, fitting the model's fixed dims — scalars included): the same array for
  every sample (a sample rate, an initial state).

The inputs that are not shared must agree on the number of samples; with none, the file is one feed
set (one call). A folder of ``.npz`` files is a list of feed sets in file-name order (a stateful
model's calls); its ``carry.json`` (``{"state": "new_state"}``) says which input takes which output
of the previous call, which checks do when they run the reference (the candidates are then fed the
inputs the reference was fed). What was decided is in ``Dataset.info["feeds"]``, one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput

if TYPE_CHECKING:
    from edgeship.core.data import Dataset

Feeds = dict[str, np.ndarray]
CARRY_FILE = "carry.json"
LABEL_KEYS = ("labels", "label")


def load_feed_files(path: Path, io: IOSpec) -> Dataset:
    """An ``.npz``, a folder of ``.npy`` files, or a folder of ``.npz`` calls, fitted to ``io``."""
    from edgeship.core.data import Dataset

    if not path.exists():
        raise BadInput(f"data {str(path)!r} not found; give an .npz file, a folder of .npy or .npz files, or data:NAME")
    if path.is_dir() and sorted(path.glob("*.npz")):
        return _calls(path, io)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise BadInput(f"folder {str(path)!r} has no .npy or .npz files; name .npy files after the model's inputs, "
                           "or give one .npz per call")
        arrays = {f.stem: _np_load(f) for f in files}
    elif path.suffix == ".npz":
        arrays = _npz(path)
    else:
        raise BadInput(f"data {str(path)!r}: expected an .npz file or a folder of .npy or .npz files")
    carry = _carry_of(arrays.pop("carry", None), path)
    samples, labels, how = feed_sets(arrays, io, str(path))
    return Dataset(str(path), samples, labels, info={"feeds": how}, carry=carry)


def feed_sets(arrays: dict[str, np.ndarray], io: IOSpec, where: str) -> tuple[list[Feeds], np.ndarray | None, str]:
    """Samples from named arrays (see the module docstring), their labels, and a line saying how."""
    labels = next((arrays.pop(k) for k in LABEL_KEYS if k in arrays), None)
    names = io.input_names
    missing = [n for n in names if n not in arrays]
    if missing:
        has = ", ".join(sorted(arrays)) or "nothing"
        raise BadInput(f"data {where!r} lacks input(s) {', '.join(missing)} (has {has}); "
                       f"name the arrays after the model's inputs: {', '.join(names)}")
    kinds = {spec.name: _kind(np.asarray(arrays[spec.name]), spec, where) for spec in io.inputs}
    counts = {n: arrays[n].shape[0] for n, k in kinds.items() if k != "shared"}
    if len(set(counts.values())) > 1:
        raise BadInput(f"data {where!r}: inputs have different sample counts {counts}; give each the same "
                       "first axis (or one feed shared by every sample)")
    n = next(iter(counts.values())) if counts else 1
    samples = []
    for i in range(n):
        sample = {}
        for name, kind in kinds.items():
            arr = np.asarray(arrays[name])
            sample[name] = arr if kind == "shared" else arr[i] if kind == "axis" else arr[i:i + 1]
        samples.append(sample)
    rows = sum(_rows(s, io) for s in samples)
    if labels is not None and len(np.asarray(labels).reshape(-1)) not in (n, rows):
        raise BadInput(f"data {where!r}: {len(np.asarray(labels).reshape(-1))} labels for {n} samples")
    return samples, None if labels is None else np.asarray(labels).reshape(-1), _describe(kinds, n)


def _kind(arr: np.ndarray, spec: TensorSpec, where: str) -> str:
    """"axis" (samples on an extra leading axis), "rows" (one sample per batch row) or "shared"."""
    rank = len(spec.shape)
    fixed = [(a, d) for a, d in enumerate(spec.shape) if isinstance(d, int)]
    if arr.ndim == rank + 1 and all(arr.shape[a + 1] == d for a, d in fixed):
        if arr.shape[0] == 0:
            raise BadInput(f"data {where!r} is empty: input {spec.name!r} has 0 samples; give at least one")
        return "axis"
    if arr.ndim == rank and rank > 0:
        if arr.shape[0] == 0:
            raise BadInput(f"data {where!r} is empty: input {spec.name!r} has 0 samples; give at least one")
        rest_fits = all(arr.shape[a] == d for a, d in fixed if a > 0)
        first = spec.shape[0]
        if rest_fits and (not isinstance(first, int) or (first == 1 and arr.shape[0] != 1)):
            return "rows"
        if all(arr.shape[a] == d for a, d in fixed):
            return "shared"
    if arr.ndim == 0 and rank == 0:
        return "shared"
    model = "[" + ",".join("?" if d is None else str(d) for d in spec.shape) + "]"
    raise BadInput(f"data {where!r}: input {spec.name!r} has shape {list(arr.shape)}, the model wants {rank} dims "
                   f"{model} (one feed) or {rank + 1} with the samples on a leading axis")


def _rows(sample: Feeds, io: IOSpec) -> int:
    first = sample[io.inputs[0].name]
    return int(first.shape[0]) if first.ndim else 1


def _describe(kinds: dict[str, str], n: int) -> str:
    axis = [k for k, v in kinds.items() if v == "axis"]
    rows = [k for k, v in kinds.items() if v == "rows"]
    shared = [k for k, v in kinds.items() if v == "shared"]
    if not axis and not rows:
        return "one feed set (every array at the model's own rank)"
    parts = []
    if axis:
        parts.append(f"{n} samples on an extra leading axis of {', '.join(axis)}")
    if rows:
        parts.append(f"{n} samples, one per row of {', '.join(rows)}")
    if shared:
        parts.append(f"{', '.join(shared)} the same for every sample")
    return "; ".join(parts)


def _calls(folder: Path, io: IOSpec) -> Dataset:
    """A folder of .npz files: each a feed set (or several), in file-name order, with carry.json."""
    from edgeship.core.data import Dataset

    samples: list[Feeds] = []
    labels: list[np.ndarray] = []
    files = sorted(folder.glob("*.npz"))
    for f in files:
        part, lab, _ = feed_sets(_npz(f), io, str(f))
        samples.extend(part)
        if lab is not None:
            labels.append(lab)
    carry = {}
    if (folder / CARRY_FILE).is_file():
        try:
            carry = _carry_of(json.loads((folder / CARRY_FILE).read_text()), folder / CARRY_FILE)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{str(folder / CARRY_FILE)!r} is not JSON ({exc}); "
                           "write {\"INPUT\": \"OUTPUT\"}") from None
    unknown = sorted(set(carry) - set(io.input_names))
    if unknown:
        raise BadInput(f"{str(folder / CARRY_FILE)!r} carries into {', '.join(unknown)}, not inputs of the model "
                       f"({', '.join(io.input_names)})")
    how = f"{len(samples)} calls from {len(files)} .npz files in name order"
    if carry:
        how += "; carried: " + ", ".join(f"{o} → {i}" for i, o in carry.items())
    all_labels = np.concatenate(labels) if labels and len(labels) == len(files) else None
    return Dataset(str(folder), samples, all_labels, info={"feeds": how}, carry=carry)


def _carry_of(value: object, where: Path) -> dict[str, str]:
    """``{"input": "output"}`` from carry.json, or an .npz's ``carry`` strings ``"input=output"``."""
    if value is None:
        return {}
    if isinstance(value, np.ndarray):
        value = dict(str(v).split("=", 1) for v in value.reshape(-1) if "=" in str(v))
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadInput(f"{str(where)!r}: carry must map input names to output names, e.g. {{\"state\": \"new_state\"}}")
    return dict(value)


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable .npz file ({exc}); save it with numpy.savez") from None


def _np_load(f: Path) -> np.ndarray:
    try:
        return np.load(f, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BadInput(f"{str(f)!r} is not a readable .npy file ({exc})") from None
