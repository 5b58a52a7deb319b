"""Broken outputs, named: NaN/Inf values, or all zeros where the reference is not.

The one rule runners, converters and the comparison engine use to say *what happened* to an output
(``"1,920 of 1,920 values are NaN"``) instead of only a metric that fails (``rel_err_max=1``).
"""

from __future__ import annotations

import numpy as np


def broken(values: list[np.ndarray] | np.ndarray, reference: list[np.ndarray] | np.ndarray | None = None) -> str:
    """What is wrong with an output over its samples, in a phrase ("" when nothing is): non-finite
    values, or every value zero while the reference (when given) has non-zero ones."""
    arrays = [np.asarray(a) for a in (values if isinstance(values, list) else [values])]
    floats = [a for a in arrays if a.dtype.kind in "fc"]
    total = sum(a.size for a in arrays)
    if not total:
        return ""
    nan = sum(int(np.isnan(a).sum()) for a in floats)
    inf = sum(int(np.isinf(a).sum()) for a in floats)
    if nan or inf:
        if nan + inf < total:
            return " and ".join(f"{n:,} {k}" for n, k in ((nan, "NaN"), (inf, "Inf")) if n) + f" among {total:,} values"
        kind = "NaN/Inf" if nan and inf else "NaN" if nan else "Inf"
        return f"{total:,} of {total:,} values are {kind}"
    if any(a.any() for a in arrays):
        return ""
    if reference is not None:
        refs = [np.asarray(r) for r in (reference if isinstance(reference, list) else [reference])]
        if not any(r.any() for r in refs):
            return ""  # zeros where zeros are expected
        peak = max(float(np.abs(r).max()) for r in refs if r.size)
        return f"all {total:,} values are zero (the reference's reach {peak:.3g})"
    return f"all {total:,} values are zero"
