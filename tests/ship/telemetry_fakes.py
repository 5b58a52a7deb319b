"""Telemetry as simulated devices send it: aggregates of inferences with chosen latencies, input
shifts and output sharpness, as report dicts (the wire format) or Aggregates."""

from __future__ import annotations

import uuid

import numpy as np

from edgeship.ship.telemetry import Aggregate


def aggregate(target: str, n: int = 60, latency_ms: float = 2.0, shift: float = 0.0, sharpness: float = 3.0,
              errors: int = 0, seed: int = 0, start: float = 1000.0) -> Aggregate:
    """``n`` inferences on ``target``: inputs N(shift, 1) of shape [1, 16], 10-class logits whose
    top-1 confidence grows with ``sharpness``, latencies around ``latency_ms``; ``errors`` of them fail."""
    rng = np.random.default_rng(seed)
    agg = Aggregate(target=target, sha256="0" * 64, start=start, end=start + 10)
    for i in range(n):
        if i < errors:
            agg.error("RuntimeError")
            continue
        x = (rng.standard_normal((1, 16)) + shift).astype(np.float32)
        logits = rng.standard_normal((1, 10)).astype(np.float32)
        logits[0, 0] += sharpness
        agg.observe({"x": x}, {"logits": logits}, latency_ms * float(rng.uniform(0.95, 1.05)))
    return agg


def report(device_id: str, agg: Aggregate, report_id: str | None = None) -> dict:
    return {"report_id": report_id or uuid.uuid4().hex, "device_id": device_id, **agg.to_dict()}


def golden_profile(n: int = 40, seed: int = 99) -> dict:
    """A reference profile of inputs N(0, 1) and 10-class logits of sharpness 3."""
    agg = aggregate("golden", n=n, seed=seed)
    d = agg.to_dict()
    return {"samples": agg.count, "inputs": d["inputs"], "outputs": d["outputs"]}
