"""Calibration data: validation with one-line errors, and the ONNX Runtime data readers.

A calibration set is an ``edgeship.core.data.Dataset`` (samples of feeds with a leading batch
axis). Samples of different lengths (sentences tokenised alone) are either padded to one length
(``pad``) or calibrated length by length (``bucket``); either way at most ``chunk_size`` samples'
activations are held in memory at once, so large calibration sets stay bounded.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress.quantize.configs import MIN_CALIB_SAMPLES
from edgeship.core.errors import BadInput

Feeds = dict[str, np.ndarray]


def load_calibration(spec: Any, io: Any, min_samples: int = MIN_CALIB_SAMPLES, limit: int | None = None) -> Any:
    """Load (if a spec) and validate calibration data for a model with IO spec ``io``."""
    from edgeship.core.data import Dataset, load_data, validate_data

    if isinstance(spec, Dataset):
        ds = spec.head(limit) if limit is not None and len(spec) > limit else spec
        validate_data(ds, io)
    else:
        ds = load_data(spec if isinstance(spec, str | Path) else str(spec), io, limit=limit)
    validate_calibration(ds, min_samples)
    return ds


def validate_calibration(ds: Any, min_samples: int = MIN_CALIB_SAMPLES) -> None:
    """Beyond the model-fit checks of load_data: enough samples, finite, and not constant.

    A float input that never varies over the whole set gives zero-width ranges (zero scales)
    downstream; integer inputs (token type ids, masks) may legitimately be constant.
    """
    if len(ds) == 0:
        raise BadInput(f"calibration data {ds.name!r} is empty; give at least {min_samples} samples")
    if len(ds) < min_samples:
        raise BadInput(f"calibration data {ds.name!r} has {len(ds)} sample(s); give at least {min_samples} "
                       "representative samples (more is better, e.g. 64)")
    for name in ds.samples[0]:
        arrays = [np.asarray(s[name]) for s in ds.samples]
        if arrays[0].dtype.kind != "f":
            continue
        lo = min(float(a.min()) if a.size else np.inf for a in arrays)
        hi = max(float(a.max()) if a.size else -np.inf for a in arrays)
        if not np.isfinite(lo) or not np.isfinite(hi):
            raise BadInput(f"calibration data {ds.name!r}: input {name!r} contains NaN/Inf or empty arrays; "
                           "clean the data")
        if hi - lo == 0.0:
            raise BadInput(f"calibration data {ds.name!r}: input {name!r} is constant ({lo:g}) in every sample; "
                           "calibrate with real, varied inputs")


def _length_key(feeds: Feeds) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(v.shape) for v in feeds.values())


def pad_to_common(samples: list[Feeds], pad_to: int | None = None) -> list[Feeds]:
    """Pad every input's non-batch axes with zeros to the largest size seen (masks pad with 0 too,
    which is exactly a tokenizer's padding: the padded positions are masked out)."""
    if not samples:
        return samples
    target: dict[str, list[int]] = {}
    for s in samples:
        for k, v in s.items():
            dims = list(v.shape[1:])
            target[k] = [max(a, b) for a, b in zip(target.get(k, dims), dims, strict=True)]
    if pad_to is not None:
        for dims in target.values():
            if dims:
                dims[-1] = max(dims[-1], pad_to)
    out = []
    for s in samples:
        padded = {}
        for k, v in s.items():
            widths = [(0, 0)] + [(0, t - d) for t, d in zip(target[k], v.shape[1:], strict=True)]
            padded[k] = np.pad(v, widths) if any(w[1] for w in widths) else v
        out.append(padded)
    return out


def chunks(samples: list[Feeds], policy: str, chunk_size: int) -> Iterator[list[Feeds]]:
    """Groups of same-shaped samples, at most ``chunk_size`` each (the unit ORT's calibrators collect)."""
    if policy == "pad":
        samples = pad_to_common(samples)
        groups = {(): samples}
    else:
        groups: dict[Any, list[Feeds]] = {}
        for s in samples:
            groups.setdefault(_length_key(s), []).append(s)
    for key in sorted(groups, key=str):
        group = groups[key]
        for i in range(0, len(group), chunk_size):
            yield group[i:i + chunk_size]


class FeedsReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a list of feeds."""

    def __init__(self, samples: list[Feeds], input_names: list[str]) -> None:
        self._samples = samples
        self._names = set(input_names)
        self._i = 0

    def get_next(self) -> Feeds | None:
        if self._i >= len(self._samples):
            return None
        s = self._samples[self._i]
        self._i += 1
        return {k: v for k, v in s.items() if k in self._names}

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[Feeds]:
        return iter(self._samples)

    def rewind(self) -> None:
        self._i = 0


def calibrate(model_path: Path, samples: list[Feeds], method: str, workdir: Path, policy: str = "bucket",
              chunk_size: int = 16, symmetric: bool = False, percentile: float = 99.999) -> Path:
    """Compute activation ranges of every tensor ORT would quantize; returns an ORT calibration cache
    (JSON) that ``quantize_static(calibration_cache_path=...)`` reads instead of calibrating again.

    Histogram methods (entropy, percentile) merge their histograms chunk by chunk, which lets samples
    of different lengths be calibrated bucket by bucket instead of being forced to one length.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    cal_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[method]
    extra: dict[str, Any] = {"symmetric": symmetric}
    if method == "percentile":
        extra["percentile"] = percentile
    cache = workdir / f"calib-{method}-{policy}-{int(symmetric)}-{model_path.stem}.json"
    if cache.is_file():
        return cache
    names = [i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input]
    calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "augmented.onnx"),
                                   calibrate_method=cal_method, extra_options=extra)
    try:
        # ORT's histogram collector prints progress to stdout, which belongs to --json output
        with contextlib.redirect_stdout(io.StringIO()):
            for group in chunks(samples, policy, chunk_size):
                if method != "minmax":
                    _skip_extreme_tensors(calibrator, group[-1], names)
                calibrator.collect_data(FeedsReader(group, names))
            ranges = calibrator.compute_data()
    finally:
        (workdir / "augmented.onnx").unlink(missing_ok=True)
    save_tensors_data(ranges, cache)
    return cache


# Attention masks are built as (1 - mask) * float32.min; a histogram over such a tensor overflows
# numpy and its range is meaningless anyway. These tensors are left unquantized.
EXTREME = 1e30


def _skip_extreme_tensors(calibrator: Any, sample: Feeds, names: list[str]) -> list[str]:
    sess = calibrator.infer_session
    outs = sess.run(None, {k: v for k, v in sample.items() if k in set(names)})
    skipped = []
    for meta, value in zip(sess.get_outputs(), outs, strict=True):
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and arr.size and (not np.isfinite(arr).all() or np.abs(arr).max() > EXTREME):
            skipped.append(meta.name)
    calibrator.tensors_to_calibrate = {t for t in calibrator.tensors_to_calibrate if t not in set(skipped)}
    return skipped
