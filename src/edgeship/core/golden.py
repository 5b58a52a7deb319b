"""Golden outputs: inputs and reference outputs in one ``.npz``, usable as a check's reference.

Keys: ``input:<name>:<i>`` and ``output:<name>:<i>`` for sample ``i`` (samples may differ in
shape), ``labels`` when the data has them, and ``meta`` (a JSON string: source, data, names, the
samples' ids). Stress probes (``check/probes.py``) and their reference outputs, when saved, sit
beside them as ``probe:input:<name>:<i>`` / ``probe:output:<name>:<i>`` with their ids and kinds in
``meta["probes"]``, so a device's health check judges the probes too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core import atomic
from edgeship.core.errors import BadInput

Feeds = dict[str, np.ndarray]


def save_golden(path: str | Path, inputs: list[Feeds], outputs: list[Feeds], labels: np.ndarray | None = None,
                meta: dict[str, Any] | None = None, probes: GoldenProbes | None = None) -> Path:
    arrays: dict[str, np.ndarray] = {}
    _put(arrays, "", inputs, outputs)
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    info = {"samples": len(inputs), "inputs": list(inputs[0]) if inputs else [],
            "outputs": list(outputs[0]) if outputs else [], **(meta or {})}
    if probes is not None:
        _put(arrays, "probe:", probes.inputs, probes.outputs)
        info["probes"] = {"ids": list(probes.ids), "kinds": list(probes.kinds)}
    arrays["meta"] = np.array(json.dumps(info))
    with atomic.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


@dataclasses.dataclass
class GoldenProbes:
    """Stress probes with their reference outputs, as a golden file keeps them."""

    inputs: list[Feeds]
    outputs: list[Feeds]
    ids: list[str]
    kinds: list[str]


def _put(arrays: dict[str, np.ndarray], prefix: str, inputs: list[Feeds], outputs: list[Feeds]) -> None:
    for i, (feeds, outs) in enumerate(zip(inputs, outputs, strict=True)):
        for name, a in feeds.items():
            arrays[f"{prefix}input:{name}:{i}"] = np.asarray(a)
        for name, a in outs.items():
            arrays[f"{prefix}output:{name}:{i}"] = np.asarray(a)


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable golden .npz ({exc}); "
                       "regenerate it with --save-golden") from None


def _samples(arrays: dict[str, np.ndarray], path: Path, prefix: str) -> tuple[list[Feeds], list[Feeds]]:
    inputs: dict[int, Feeds] = {}
    outputs: dict[int, Feeds] = {}
    for key, a in arrays.items():
        if not key.startswith(prefix) or (not prefix and key.startswith("probe:")):
            continue
        kind, _, rest = key[len(prefix):].partition(":")
        name, _, idx = rest.rpartition(":")
        if kind not in ("input", "output") or not idx.isdigit():
            raise BadInput(f"{str(path)!r}: unexpected array {key!r}; not a golden file written by edgeship")
        (inputs if kind == "input" else outputs).setdefault(int(idx), {})[name] = a
    n = max(outputs) + 1 if outputs else 0
    return [inputs.get(i, {}) for i in range(n)], [outputs[i] for i in range(n)]


def load_golden_probes(path: str | Path) -> GoldenProbes | None:
    """The stress probes a golden file keeps, or None when it has none (files from before probes)."""
    p = Path(path)
    arrays = _read(p)
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    info = meta.get("probes")
    if not info:
        return None
    inputs, outputs = _samples({k: v for k, v in arrays.items() if k.startswith("probe:")}, p, "probe:")
    if len(outputs) != len(info.get("ids", [])):
        raise BadInput(f"{str(p)!r}: {len(outputs)} probe outputs for {len(info.get('ids', []))} probe ids; "
                       "regenerate the golden file")
    return GoldenProbes(inputs, outputs, list(info["ids"]), list(info.get("kinds", ["probe"] * len(outputs))))


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
    arrays = _read(p)
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    labels = arrays.pop("labels", None)
    inputs, outputs = _samples(arrays, p, "")
    if not outputs:
        raise BadInput(f"{str(p)!r} has no reference outputs; not a golden file")
    return inputs, outputs, labels, meta
