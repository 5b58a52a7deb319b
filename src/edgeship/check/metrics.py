"""Accuracy metrics between reference and candidate outputs.

Outputs come as one array per sample (each with a leading batch dim, so inputs of different
lengths are fine). Metrics are computed per row (one row = one batch item) and over all elements:

- ``max_abs`` / ``mean_abs``: absolute error over all elements;
- ``rel_err_max``: ``max_abs / max|ref|``, a scale-free error that FP32/FP16 tolerances use;
- ``cosine_mean`` / ``cosine_min``: cosine similarity of each row's flattened output, averaged / worst;
- ``snr_db``: 10·log10(Σref² / Σerr²), capped at ``SNR_CAP_DB`` when outputs are identical;
- ``top1_agreement``: fraction of rows whose argmax (over the last axis) matches the reference's;
- ``accuracy`` / ``ref_accuracy`` / ``accuracy_drop``: task accuracy against labels, in points (0–100).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SNR_CAP_DB = 300.0

# Direction of each metric: True when higher is better. Gates and worst-case summaries use it.
HIGHER_IS_BETTER: dict[str, bool] = {
    "max_abs": False, "mean_abs": False, "rel_err_max": False, "accuracy_drop": False,
    "cosine_mean": True, "cosine_min": True, "snr_db": True, "top1_agreement": True, "accuracy": True,
    "ref_accuracy": True,
}


def _rows(arrays: list[np.ndarray]) -> list[np.ndarray]:
    rows: list[np.ndarray] = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 0:
            rows.append(a.reshape(1))
        else:
            rows.extend(a.reshape(a.shape[0], -1))
    return rows


def output_metrics(ref: list[np.ndarray], cand: list[np.ndarray], labels: np.ndarray | None = None,
                   classifier: bool | None = None) -> dict[str, Any]:
    """Metrics of one output over samples. ``classifier`` forces (or suppresses) top-1 agreement;
    by default it is computed for 2-D outputs with more than one column."""
    if len(ref) != len(cand):
        raise ValueError(f"{len(ref)} reference samples vs {len(cand)} candidate samples")
    for i, (r, c) in enumerate(zip(ref, cand, strict=True)):
        if np.shape(r) != np.shape(c):
            raise ValueError(f"sample {i}: reference shape {list(np.shape(r))} vs candidate {list(np.shape(c))}")
    rrows, crows = _rows(ref), _rows(cand)
    err_max = 0.0
    err_sum = 0.0
    count = 0
    ref_abs_max = 0.0
    sig = 0.0
    noise = 0.0
    cosines = []
    nonfinite = 0
    for r, c in zip(rrows, crows, strict=True):
        if not np.isfinite(c).all():
            nonfinite += int((~np.isfinite(c)).sum())
            c = np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0)
        d = np.abs(r - c)
        err_max = max(err_max, float(d.max(initial=0.0)))
        err_sum += float(d.sum())
        count += d.size
        ref_abs_max = max(ref_abs_max, float(np.abs(r).max(initial=0.0)))
        sig += float((r * r).sum())
        noise += float((d * d).sum())
        nr, nc = float(np.linalg.norm(r)), float(np.linalg.norm(c))
        if nr == 0.0 and nc == 0.0:
            cosines.append(1.0)
        elif nr == 0.0 or nc == 0.0:
            cosines.append(0.0)
        else:
            cosines.append(float(np.dot(r, c) / (nr * nc)))
    out: dict[str, Any] = {
        "rows": len(rrows),
        "max_abs": err_max,
        "mean_abs": err_sum / max(1, count),
        "rel_err_max": err_max / ref_abs_max if ref_abs_max > 0 else (0.0 if err_max == 0 else math.inf),
        "cosine_mean": float(np.mean(cosines)) if cosines else 1.0,
        "cosine_min": float(np.min(cosines)) if cosines else 1.0,
        "snr_db": _snr_db(sig, noise),
        "nonfinite": nonfinite,
    }
    is_cls = classifier if classifier is not None else is_classifier("other", ref)
    if is_cls:
        rtop = np.concatenate([np.asarray(a).reshape(np.shape(a)[0], -1).argmax(-1) for a in ref])
        ctop = np.concatenate([np.nan_to_num(np.asarray(a, dtype=np.float64)).reshape(np.shape(a)[0], -1).argmax(-1)
                               for a in cand])
        out["top1_agreement"] = float((rtop == ctop).mean())
        if labels is not None and len(labels) == len(rtop):
            labels = np.asarray(labels).reshape(-1)
            out["ref_accuracy"] = float((rtop == labels).mean() * 100)
            out["accuracy"] = float((ctop == labels).mean() * 100)
            out["accuracy_drop"] = out["ref_accuracy"] - out["accuracy"]
    return out


def _snr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return SNR_CAP_DB
    if signal == 0:
        return -SNR_CAP_DB
    return min(SNR_CAP_DB, 10 * math.log10(signal / noise))


def is_classifier(task: str, ref: list[np.ndarray]) -> bool:
    """The one rule for "is this output a classifier's scores": the task says so when it is
    ``classification`` or ``embedding``; otherwise 2-D outputs with more than one column are."""
    if task in ("classification", "embedding"):
        return task == "classification"
    return bool(ref) and all(np.ndim(a) == 2 and np.shape(a)[1] > 1 for a in ref)


def worst_case(per_output: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One summary over outputs: for each metric the worst value any output has."""
    summary: dict[str, Any] = {}
    for metrics in per_output.values():
        for k, v in metrics.items():
            if not isinstance(v, int | float) or k in ("rows",):
                continue
            if k == "nonfinite":
                summary[k] = summary.get(k, 0) + v
                continue
            if k not in summary:
                summary[k] = v
            elif HIGHER_IS_BETTER.get(k, False):
                summary[k] = min(summary[k], v)
            else:
                summary[k] = max(summary[k], v)
    return summary
