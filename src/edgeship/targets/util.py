"""Helpers the target packages share: atomic bundles, torch sources, calibration rows, layouts.

Light at import (numpy only); the heavy back-ends are imported by the target packages themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, Model, TensorSpec
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput

Feeds = dict[str, np.ndarray]


def replace_tree(src: Path, out: Path) -> Path:
    """Move a finished bundle folder (``.mlpackage``) or file onto ``out``; an old bundle there is
    swapped out first and removed after, so ``out`` is never a half-written bundle."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"output folder {str(parent)!r} does not exist; create it first (mkdir -p {parent})")
    old = None
    if out.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
        os.replace(out, old / out.name)
    os.replace(src, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


@contextlib.contextmanager
def scratch_dir(near: Path) -> Iterator[Path]:
    """A temporary working folder beside the output (same file system, so results rename into place)."""
    parent = near.parent if str(near.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{near.name}.work.", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(src: Path, out: Path) -> Path:
    """Rename a finished file onto ``out`` (atomic on one file system)."""
    check_output_path(out)
    os.replace(src, out)
    return out


def is_torch_source(obj: Any) -> bool:
    from edgeship.sources.torch_source import TorchSource

    return isinstance(obj, TorchSource)


def require_torch_source(obj: Any, target: str) -> Any:
    """Targets whose converter starts from PyTorch take a TorchSource; say so when given a file."""
    if is_torch_source(obj):
        return obj
    where = getattr(obj, "path", obj)
    raise BadInput(f"target {target!r} converts from the PyTorch source, not from {str(where)!r}; give the source "
                   "(zoo:NAME or net.py:factory) instead of the exported file")


def source_model(source: Any) -> Model:
    """A Model handle standing for a TorchSource, so converted files keep a provenance chain."""
    facts: dict[str, Any] = {"task": source.task}
    if source.gate:
        facts["gates"] = list(source.gate)
    if source.labels:
        facts["labels"] = list(source.labels)
    return Model(Path(source.name), "torch", source.io, (), facts)


def inherited_facts(model: Model) -> dict[str, Any]:
    """Facts a converted file keeps from its parent (task and gate belong to the model, not the file)."""
    return {k: model.facts[k] for k in ("task", "gates", "labels") if k in model.facts}


def split_rows(feeds: Feeds) -> list[Feeds]:
    """One feed per row of the batch dimension (for runtimes whose programs have a fixed batch of 1)."""
    n = next(iter(feeds.values())).shape[0] if feeds else 0
    return [{k: v[i:i + 1] for k, v in feeds.items()} for i in range(n)]


def run_rows(feeds: Feeds, fn: Callable[[Feeds], Feeds]) -> Feeds:
    """Run ``fn`` on each row of ``feeds`` and stack the outputs back along the batch axis."""
    rows = split_rows(feeds)
    if len(rows) == 1:
        return fn(rows[0])
    outs = [fn(r) for r in rows]
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def calib_rows(calib: Any, io: IOSpec, limit: int | None = None) -> list[Feeds]:
    """Calibration samples as single-row feeds, checked against ``io`` (a Dataset, a data spec or None)."""
    if calib is None:
        return []
    from edgeship.core.data import Dataset, load_data

    ds = calib if isinstance(calib, Dataset) else load_data(calib, io)
    rows = [r for s in ds.samples for r in split_rows(s)]
    return rows[:limit] if limit else rows


def fixed_shapes(io: IOSpec, rows: list[Feeds],
                 shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple[int, ...]]:
    """A concrete shape per input: given ``shapes``, else the first calibration row's, else the IO
    spec with a symbolic batch set to 1. A symbolic non-batch dim without data is a BadInput."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in io.inputs:
        if shapes and spec.name in shapes:
            out[spec.name] = tuple(shapes[spec.name])
        elif rows:
            out[spec.name] = tuple(rows[0][spec.name].shape)
        else:
            how = f"calibration data (--calib) or a fixed shape (shapes={{'{spec.name}': (...)}})"
            out[spec.name] = spec.concrete(fix=how)
    return out


def dynamic_shapes(source: Any, max_dim: int) -> tuple[Any, ...] | None:
    """torch.export dynamic shapes for a TorchSource's declared non-batch dynamic axes (sequence length),
    bounded by ``max_dim``; the batch stays at the example's (runners feed rows one by one)."""
    import torch

    dims: dict[str, Any] = {}
    spec: list[dict[int, Any] | None] = []
    any_dynamic = False
    for name in source.example_inputs:
        axes = {a: n for a, n in source.dynamic_axes.get(name, {}).items() if a != 0}
        if axes:
            any_dynamic = True
            # a source may bound a dim below max_dim (a text model's learned positions: 128 in a tiny BERT)
            bound = {n: min(max_dim, int(source.extra.get("dim_max", {}).get(n, max_dim))) for n in axes.values()}
            spec.append({a: dims.setdefault(n, torch.export.Dim(n, min=2, max=bound[n])) for a, n in axes.items()})
        else:
            spec.append(None)
    return tuple(spec) if any_dynamic else None


# -- layouts ------------------------------------------------------------------------------------------
# channels-first → channels-last permutation per rank (what onnx2tf does to image-like tensors)
CHANNELS_LAST = {3: (0, 2, 1), 4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}


def layout_perm(onnx_shape: tuple[Any, ...], native_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The permutation taking an ONNX-layout array to the runtime's layout, or None when they agree.

    Symbolic/unknown dims (and -1 in the native shape) match anything."""
    def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        return len(a) == len(b) and all(not isinstance(x, int) or y in (-1, None) or x == y
                                        for x, y in zip(a, b))
    native = tuple(int(d) for d in native_shape)
    if same(tuple(onnx_shape), native):
        return None
    perm = CHANNELS_LAST.get(len(onnx_shape))
    if perm and same(tuple(onnx_shape[p] for p in perm), native):
        return perm
    # another transpose a converter chose ([2, 1, 128] → [1, 2, 128]): taken when exactly one fits
    import itertools

    fits = [q for q in itertools.permutations(range(len(onnx_shape)))
            if all(isinstance(onnx_shape[i], int) for i in q) and same(tuple(onnx_shape[i] for i in q), native)]
    if len(fits) == 1:
        return tuple(fits[0])
    raise BadInput(f"cannot match the converted tensor shape {list(native)} to the ONNX shape {list(onnx_shape)}; "
                   "convert with keep_nchw=True or fix the input shape")


def inverse_perm(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def layout_name(rank: int, perm: tuple[int, ...] | None) -> str:
    names = {3: "NCW", 4: "NCHW", 5: "NCDHW"}
    base = names.get(rank, "as exported")
    if perm is None:
        return base
    return "".join(base[p] for p in perm) if base != "as exported" else str(list(perm))


def capture_c_output() -> contextlib.AbstractContextManager[list[str]]:
    """Capture what C/C++ code writes to file descriptors 1 and 2 (Python's own streams included);
    the text lands in the yielded list when the block ends (:func:`edgeship.core.logs.captured_output`)."""
    from edgeship.core.logs import captured_output

    return captured_output()


def spec_with_shape(spec: TensorSpec, shape: tuple[Any, ...], dtype: str | None = None) -> TensorSpec:
    return TensorSpec(spec.name, dtype or spec.dtype, tuple(shape))
