"""Golden outputs: inputs and reference outputs in one ``.npz``, usable as a check's reference.

Keys: ``input:<name>:<i>`` and ``output:<name>:<i>`` for sample ``i`` (samples may differ in
shape), ``labels`` when the data has them, and ``meta`` (a JSON string: source, data, names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core import atomic
from edgeship.core.errors import BadInput

Feeds = dict[str, np.ndarray]


def save_golden(path: str | Path, inputs: list[Feeds], outputs: list[Feeds], labels: np.ndarray | None = None,
                meta: dict[str, Any] | None = None) -> Path:
    arrays: dict[str, np.ndarray] = {}
    for i, (feeds, outs) in enumerate(zip(inputs, outputs, strict=True)):
        for name, a in feeds.items():
            arrays[f"input:{name}:{i}"] = np.asarray(a)
        for name, a in outs.items():
            arrays[f"output:{name}:{i}"] = np.asarray(a)
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    info = {"samples": len(inputs), "inputs": list(inputs[0]) if inputs else [],
            "outputs": list(outputs[0]) if outputs else [], **(meta or {})}
    arrays["meta"] = np.array(json.dumps(info))
    with atomic.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def is_golden(path: str | Path) -> bool:
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return any(k.startswith("output:") for k in z.files)
    except (ValueError, OSError, EOFError):
        return False


def load_golden(path: str | Path) -> tuple[list[Feeds], list[Feeds], np.ndarray | None, dict[str, Any]]:
    """Returns (inputs, outputs, labels, meta); samples in order."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"golden file {str(p)!r} not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(p)!r} is not a readable golden .npz ({exc}); regenerate it with --save-golden") from None
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    labels = arrays.pop("labels", None)
    inputs: dict[int, Feeds] = {}
    outputs: dict[int, Feeds] = {}
    for key, a in arrays.items():
        kind, _, rest = key.partition(":")
        name, _, idx = rest.rpartition(":")
        if kind not in ("input", "output") or not idx.isdigit():
            raise BadInput(f"{str(p)!r}: unexpected array {key!r}; not a golden file written by edgeship")
        (inputs if kind == "input" else outputs).setdefault(int(idx), {})[name] = a
    if not outputs:
        raise BadInput(f"{str(p)!r} has no reference outputs; not a golden file")
    n = max(outputs) + 1
    return [inputs.get(i, {}) for i in range(n)], [outputs[i] for i in range(n)], labels, meta
