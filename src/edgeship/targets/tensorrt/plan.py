"""The parts of a TensorRT build that need neither TensorRT nor a GPU: builder flags, optimization
profile shapes for dynamic dims, and calibration batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec
from edgeship.core.errors import BadInput
from edgeship.targets.tensorrt.target import TensorrtTargetConfig

Feeds = dict[str, np.ndarray]


def builder_flags(cfg: TensorrtTargetConfig) -> list[str]:
    """Names of ``trt.BuilderFlag`` members to set for a precision."""
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}[cfg.precision]
    if cfg.precision == "int8" and cfg.fp16_fallback:
        flags.append("FP16")
    return flags


def profile_shapes(io: IOSpec, cfg: TensorrtTargetConfig, rows: list[Feeds] | None = None
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape per input for one optimization profile.

    Given profiles win. Otherwise a fixed dim is itself; a dynamic batch axis spans 1..max_batch
    (opt = calib_batch); other dynamic axes span what the data shows (opt = the most common size),
    so a dynamic sequence without data is a BadInput."""
    given = cfg.profile or {}
    out = {}
    for spec in io.inputs:
        if spec.name in given:
            p = given[spec.name]
            out[spec.name] = (tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
            continue
        lo, mid, hi = [], [], []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int):
                lo.append(dim), mid.append(dim), hi.append(dim)
            elif axis == 0:
                lo.append(1), mid.append(min(cfg.calib_batch, cfg.max_batch)), hi.append(cfg.max_batch)
            else:
                seen = [int(r[spec.name].shape[axis]) for r in rows or () if spec.name in r]
                if not seen:
                    raise BadInput(f"input {spec.name!r} has dynamic dim {dim!r} at axis {axis}; give calibration "
                                   f"data or profile={{'{spec.name}': {{'min': [...], 'opt': [...], 'max': [...]}}}}")
                values, counts = np.unique(seen, return_counts=True)
                lo.append(int(values.min())), mid.append(int(values[counts.argmax()])), hi.append(int(values.max()))
        out[spec.name] = (tuple(lo), tuple(mid), tuple(hi))
    return out


class CalibrationBatches:
    """Fixed-size batches for TensorRT's calibrator: ``batch_size`` rows stacked per input, contiguous,
    in the engine's input dtypes (int64 → int32, which is what TensorRT binds). Rows whose shapes
    differ from the first row's are skipped (a batch must stack), and a final partial batch is
    dropped (the calibrator's batch size is fixed)."""

    def __init__(self, rows: list[Feeds], names: list[str], batch_size: int) -> None:
        if not rows:
            raise BadInput("tensorrt int8 needs calibration data; pass --calib data:NAME or an .npz file")
        shapes = {n: rows[0][n].shape[1:] for n in names}
        self.rows = [r for r in rows if all(r[n].shape[1:] == shapes[n] for n in names)]
        self.names = names
        self.batch_size = max(1, min(batch_size, len(self.rows)))
        self.skipped = len(rows) - len(self.rows)

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size

    def __iter__(self) -> Iterator[Feeds]:
        for b in range(len(self)):
            chunk = self.rows[b * self.batch_size:(b + 1) * self.batch_size]
            yield {n: np.ascontiguousarray(np.concatenate([r[n] for r in chunk]).astype(_bind_dtype(chunk[0][n])))
                   for n in self.names}


def _bind_dtype(a: np.ndarray) -> Any:
    return np.int32 if a.dtype == np.int64 else a.dtype
