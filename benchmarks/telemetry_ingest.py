"""Telemetry ingest: can one rollout service process absorb a fleet's telemetry?

    .venv/bin/python benchmarks/telemetry_ingest.py [--devices 1000] [--every 10] [--seconds 60]
        [--warmup 2] [--db postgresql|sqlite] [--p99-limit-ms 100] [--fail-on-latency] [--json OUT]

1,000 simulated devices each send one telemetry report every 10 s (100 requests a second, open
loop: each device on its own schedule, whatever the answers take) to one service process
(``RolloutProcess``: uvicorn, one worker) over PostgreSQL (a throwaway server the script starts)
or SQLite. Each report is what ``edgeship.ship.telemetry`` sends for an interval of 20 inferences
of a classifier with one [1, 32] input (latency, input and output sketches; about 3 KB of JSON).
The figure is the ingest latency a device sees — from sending the request to reading the answer —
at p50/p95/p99 over the steady stream (the first ``--warmup`` seconds of it, each connection's
and each service thread's first requests, are sent but not measured), with the service's own
handling time from its /metrics histogram (every request, the warm-up's included). The load
generator runs on the same machine and takes CPU from the service; what it measures is therefore
an upper bound.

The script exits 1 when a report was refused or lost. Whether the p99 stayed within its limit is
printed (``p99_within_limit``, with the load average before and after the run); it decides the
exit code only with ``--fail-on-latency``, as a gate on a machine nothing else uses: on a shared
machine another job's load moves the tail, not the service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core import atomic

sys.path.insert(0, str(Path(__file__).parent))


def _reports(devices: int, seed: int = 0) -> list[dict[str, Any]]:
    """One report body per device (the report id changes at each send)."""
    from edgeship.ship.telemetry import Aggregate

    rng = np.random.default_rng(seed)
    out = []
    for i in range(devices):
        agg = Aggregate(target="models/fleet-mlp/1.0.0/model.onnx", sha256="0" * 64, start=time.time(),
                        end=time.time() + 10)
        for _ in range(20):
            x = rng.standard_normal((1, 32)).astype(np.float32)
            logits = rng.standard_normal((1, 10)).astype(np.float32)
            agg.observe({"x": x}, {"logits": logits}, float(rng.lognormal(0.5, 0.1)), "classification")
        out.append({"device_id": f"dev-{i:04d}", **agg.to_dict()})
    return out


def run(devices: int = 1000, every_s: float = 10.0, seconds: float = 60.0, db: str = "postgresql",
        senders: int = 32, warmup_s: float = 2.0) -> dict[str, Any]:
    import urllib3

    from edgeship.ship.rollout.service import RolloutProcess

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edgeship-ingest-") as tmp:
        pg = None
        if db == "postgresql":
            from pg_server import PostgresServer

            pg = PostgresServer().start()
            url = pg.new_database()
        else:
            url = str(Path(tmp) / "rollouts.db")
        service = RolloutProcess(url)
        try:
            bodies = _reports(devices)
            http = urllib3.PoolManager(maxsize=senders, block=True)
            # Every device sends at its own phase of the period: an even stream of requests, after
            # ``warmup_s`` of the same stream that is not measured (each connection's and each of the
            # service's threads' first requests: some 150-300 ms at the start, then never again).
            phase = [i * every_s / devices for i in range(devices)]
            schedule = sorted([(phase[i], i, False) for i in range(devices) if phase[i] < warmup_s] +
                              [(warmup_s + k * every_s + phase[i], i, True) for i in range(devices)
                               for k in range(int(seconds / every_s))])
            latencies: list[float] = []
            late: list[float] = []  # how far behind its schedule a request was sent (the generator's own lag)
            errors: list[str] = []
            lock = threading.Lock()
            cursor = {"next": 0}
            t0 = time.monotonic() + 1.0

            def sender() -> None:
                while True:
                    with lock:
                        if cursor["next"] >= len(schedule):
                            return
                        at, i, measured = schedule[cursor["next"]]
                        cursor["next"] += 1
                    wait = t0 + at - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    body = json.dumps({"reports": [{**bodies[i], "report_id": uuid.uuid4().hex}]}).encode()
                    started = time.monotonic()
                    try:
                        r = http.request("POST", service.url + "/v1/telemetry", body=body, timeout=30, retries=False,
                                         headers={"Content-Type": "application/json"})
                        ok = r.status == 200
                        if not ok:
                            errors.append(f"HTTP {r.status}: {r.data[:200]!r}")
                    except Exception as exc:
                        ok = False
                        errors.append(f"{type(exc).__name__}: {exc}")
                    done = time.monotonic()
                    with lock:
                        if measured:
                            late.append(started - (t0 + at))
                        if ok and measured:
                            latencies.append((done - started) * 1000)

            threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0 - warmup_s
            metrics = http.request("GET", service.url + "/metrics").data.decode()
        finally:
            service.stop()
            if pg is not None:
                pg.stop()
    handled = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
               if line.startswith("edgeship_ingest_seconds_")}
    q = np.percentile(latencies, [50, 95, 99]) if latencies else [float("nan")] * 3
    measured = sum(1 for entry in schedule if entry[2])
    return {"devices": devices, "report_every_s": every_s, "seconds": round(wall, 1), "database": db,
            "warmup_s": warmup_s, "warmup_requests": len(schedule) - measured,
            "requests": measured, "accepted": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "rate_per_s": round(len(latencies) / wall, 1), "report_bytes": len(json.dumps(bodies[0])),
            "ingest_ms": {"p50": round(float(q[0]), 2), "p95": round(float(q[1]), 2), "p99": round(float(q[2]), 2),
                          "max": round(max(latencies), 2) if latencies else None},
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "sender_lag_ms_p99": round(float(np.percentile(late, 99)) * 1000, 1) if late else None,
            "service_handling_s": {"count": handled.get("edgeship_ingest_seconds_count"),
                                   "mean_ms": round(1000 * handled.get("edgeship_ingest_seconds_sum", 0) /
                                                    max(1.0, handled.get("edgeship_ingest_seconds_count", 1)), 2),
                                   "under_10ms": handled.get('edgeship_ingest_seconds_bucket{le="0.01"}'),
                                   "under_100ms": handled.get('edgeship_ingest_seconds_bucket{le="0.1"}')}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--every", type=float, default=10.0, help="seconds between two reports of one device")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds measured, after the warm-up")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of the same stream sent first, not measured")
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--p99-limit-ms", type=float, default=100.0, help="the ingest latency the p99 should stay within")
    p.add_argument("--fail-on-latency", action="store_true", help="exit 1 when the p99 is over its limit too")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    result = run(args.devices, args.every, args.seconds, args.db, warmup_s=args.warmup)
    p99 = result["ingest_ms"]["p99"]
    result["p99_limit_ms"] = args.p99_limit_ms
    result["p99_within_limit"] = bool(p99 == p99 and p99 <= args.p99_limit_ms)  # NaN: nothing accepted
    print(json.dumps(result, indent=2))
    if args.json:
        atomic.write_text(args.json, json.dumps(result, indent=2) + "\n")
    if result["errors"] or result["accepted"] < result["requests"]:
        print(f"telemetry_ingest: {result['requests'] - result['accepted']} of {result['requests']} reports not "
              f"accepted: {result['first_errors']}", file=sys.stderr)
        return 1
    if not result["p99_within_limit"]:
        print(f"telemetry_ingest: p99 {p99} ms is over the {args.p99_limit_ms:g} ms limit (load average "
              f"{result['load_average_1min'][0]} -> {result['load_average_1min'][1]} on "
              f"{os.cpu_count()} cores)", file=sys.stderr)
        return 1 if args.fail_on_latency else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
