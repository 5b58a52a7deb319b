"""Accuracy metrics between reference and candidate outputs.

Outputs come as one array per sample (each with a leading batch dim, so inputs of different
lengths are fine). Metrics are computed per row (one row = one batch item) and over all elements:

- ``max_abs`` / ``mean_abs``: absolute error over all elements;
- ``rel_err_max``: ``max_abs / max|ref|``, a scale-free error that FP32/FP16 tolerances use;
- ``cosine_mean`` / ``cosine_min``: cosine similarity of each row's flattened output, averaged / worst;
- ``snr_db``: 10·log10(Σref² / Σerr²), capped at ``SNR_CAP_DB`` when outputs are identical;
- ``top1_agreement``: fraction of rows whose argmax (over the last axis) matches the reference's;
- ``top1_agreement_confident``: the same over the rows where the reference is confident: its softmax
  top-1 probability exceeds its top-2 by more than ``confident_margin`` (``tolerances.yaml``,
  0.1). Near-ties flip under any change of arithmetic (bf16 flips them too): agreement on them
  judges noise, not the candidate. ``confident_rows`` says how many rows that is;
- ``top5_agreement``: fraction of rows whose reference top-1 class is among the candidate's 5 best;
- ``accuracy`` / ``ref_accuracy`` / ``accuracy_drop``: task accuracy against labels, in points (0–100).

Beside the figures, ``stats`` (one entry per metric) says how far to trust them: ``n`` (the rows
it is over), for a mean its 95% interval ``ci95`` (a bootstrap of the rows; for an agreement, a
fraction of 0/1 rows, the Wilson score interval, since a bootstrap of rows that all agree has no
width and claims a certainty n rows cannot give), for a worst case the row that produced it
(``worst_row``), and ``noise_margin``: how far the figure could move on other data of the same kind
— for a mean the distance to its interval's bound on the failing side, for a worst case the gap
between the worst and the second-worst row (the spacing of the tail: about how much further the
next unseen input may land). A gate met by less than its noise margin is *marginal*.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

SNR_CAP_DB = 300.0
TOP_K = 5
BOOTSTRAP_RESAMPLES = 1000
TOLERANCES_FILE = Path(__file__).with_name("tolerances.yaml")


@functools.lru_cache(maxsize=1)
def tolerance_table() -> dict[str, Any]:
    """The one tolerance table, ``check/tolerances.yaml``, as read (gates by precision and task,
    classifier settings)."""
    import yaml

    return yaml.safe_load(TOLERANCES_FILE.read_text())


def confident_margin() -> float:
    """The reference's top-1 minus top-2 softmax probability above which a row counts as confident."""
    return float(tolerance_table()["classifier"]["confident_margin"])

# Direction of each metric: True when higher is better. Gates and worst-case summaries use it.
HIGHER_IS_BETTER: dict[str, bool] = {
    "max_abs": False, "mean_abs": False, "rel_err_max": False, "accuracy_drop": False,
    "cosine_mean": True, "cosine_min": True, "snr_db": True, "top1_agreement": True, "accuracy": True,
    "ref_accuracy": True, "top1_agreement_confident": True, "top5_agreement": True,
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
    row_err = []  # per row: max |err| (for the worst row of rel_err_max)
    nonfinite = 0
    for r, c in zip(rrows, crows, strict=True):
        if not np.isfinite(c).all():
            nonfinite += int((~np.isfinite(c)).sum())
            c = np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0)
        d = np.abs(r - c)
        row_err.append(float(d.max(initial=0.0)))
        err_max = max(err_max, row_err[-1])
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
    n = len(rrows)
    cos = np.asarray(cosines)
    stats: dict[str, dict[str, Any]] = {
        "cosine_mean": mean_stats(cos),
        "cosine_min": tail_stats(cos, lowest=True),
        "rel_err_max": tail_stats(np.asarray(row_err) / ref_abs_max if ref_abs_max > 0 else np.asarray(row_err),
                                  lowest=False),
        "max_abs": tail_stats(np.asarray(row_err), lowest=False),
        "mean_abs": {"n": n}, "snr_db": {"n": n},
    }
    is_cls = classifier if classifier is not None else is_classifier("other", ref)
    if is_cls:
        rmat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(np.shape(a)[0], -1) for a in ref])
        cmat = np.concatenate([np.nan_to_num(np.asarray(a, dtype=np.float64)).reshape(np.shape(a)[0], -1)
                               for a in cand])
        rtop, ctop = rmat.argmax(-1), cmat.argmax(-1)
        agree = rtop == ctop
        margin = top2_margin(rmat)
        confident = margin > confident_margin()
        k = min(TOP_K, cmat.shape[1])
        ctopk = np.argpartition(-cmat, k - 1, axis=1)[:, :k]
        in_topk = (ctopk == rtop[:, None]).any(axis=1)
        out["top1_agreement"] = float(agree.mean())
        out["top1_agreement_confident"] = float(agree[confident].mean()) if confident.any() else 1.0
        out["confident_rows"] = int(confident.sum())
        out["top5_agreement"] = float(in_topk.mean())
        # the worst disagreement is the one where the reference was surest
        stats["top1_agreement"] = proportion_stats(agree, worst=_surest(~agree, margin))
        stats["top1_agreement_confident"] = proportion_stats(agree[confident],
                                                             worst=_surest(~agree & confident, margin))
        stats["top5_agreement"] = proportion_stats(in_topk, worst=_surest(~in_topk, margin))
        if labels is not None and len(labels) == len(rtop):
            labels = np.asarray(labels).reshape(-1)
            out["ref_accuracy"] = float((rtop == labels).mean() * 100)
            out["accuracy"] = float((ctop == labels).mean() * 100)
            out["accuracy_drop"] = out["ref_accuracy"] - out["accuracy"]
            stats["accuracy"] = proportion_stats(ctop == labels, scale=100.0)
            stats["ref_accuracy"] = proportion_stats(rtop == labels, scale=100.0)
            paired = ((rtop == labels).astype(np.float64) - (ctop == labels)) * 100.0
            stats["accuracy_drop"] = mean_stats(paired, higher_is_better=False,
                                                worst=_surest((rtop == labels) & (ctop != labels), margin))
    out["stats"] = stats
    return out


def top2_margin(scores: np.ndarray) -> np.ndarray:
    """Per row: softmax top-1 minus top-2 probability (rows that are already probabilities — in
    [0, 1] and summing to 1 — are taken as they are)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[1] < 2:
        return np.ones(len(s))
    probs_already = (s >= 0).all() and (s <= 1).all() and np.allclose(s.sum(axis=1), 1.0, atol=1e-3)
    if not probs_already:
        z = s - s.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e / e.sum(axis=1, keepdims=True)
    top2 = np.sort(s, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _surest(mask: np.ndarray, margin: np.ndarray) -> int | None:
    """Among the rows in ``mask``, the one where the reference was most confident (None if none)."""
    idx = np.flatnonzero(mask)
    return int(idx[np.argmax(margin[idx])]) if idx.size else None


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (rows resampled with replacement;
    a fixed seed, so the same data always gives the same interval)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        m = float(v.mean()) if v.size else math.nan
        return m, m
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def wilson_ci(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (it stays honest at 0 or n successes)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_stats(values: np.ndarray, higher_is_better: bool = True, worst: int | None = None) -> dict[str, Any]:
    """n, the bootstrap 95% interval, the noise margin (distance to the bound on the failing side)
    and the worst row of a mean over rows."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    lo, hi = bootstrap_ci(v)
    m = float(v.mean())
    row = worst if worst is not None else int(np.argmin(v) if higher_is_better else np.argmax(v))
    return {"n": int(v.size), "ci95": [lo, hi], "noise_margin": (m - lo) if higher_is_better else (hi - m),
            "worst_row": row}


def proportion_stats(hits: np.ndarray, worst: int | None = None, scale: float = 1.0) -> dict[str, Any]:
    """n, the Wilson 95% interval and the noise margin of a fraction of rows (times ``scale``)."""
    h = np.asarray(hits, dtype=bool)
    if h.size == 0:
        return {"n": 0}
    lo, hi = wilson_ci(int(h.sum()), int(h.size))
    p = float(h.mean())
    out: dict[str, Any] = {"n": int(h.size), "ci95": [lo * scale, hi * scale], "noise_margin": (p - lo) * scale}
    if worst is not None:
        out["worst_row"] = worst
    return out


def tail_stats(values: np.ndarray, lowest: bool) -> dict[str, Any]:
    """n, the worst row and the noise margin (gap to the second-worst row) of a worst case."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    order = np.argsort(v if lowest else -v, kind="stable")
    out: dict[str, Any] = {"n": int(v.size), "worst_row": int(order[0])}
    if v.size >= 2:
        out["noise_margin"] = float(abs(v[order[1]] - v[order[0]]))
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
            if not isinstance(v, int | float) or isinstance(v, bool) or k in ("rows", "confident_rows"):
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


def worst_case_stats(per_output: dict[str, dict[str, Any]], summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``stats`` of each summary metric, taken from the output that has the summary's value."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in summary.items():
        for name, metrics in per_output.items():
            if metrics.get(k) == v and k in metrics.get("stats", {}):
                out[k] = {**metrics["stats"][k], **({"output": name} if len(per_output) > 1 else {})}
                break
    return out
