"""The benchmark worker: loads one model in a fresh process, times it, prints JSON on stdout.

A fresh process per model keeps peak RSS and load time honest and keeps one runtime's thread pools
from disturbing another's timings. Invoked by ``edgeship.bench.harness``; not a user command.

In order: pin the process to the cores it was given (the runtime's threads inherit that), build the
runner (load time), the first inference apart (cold start), warm-up until stable, timed repetitions
until the median is known to the interval asked for or the time cap, throughput at each extra batch
size, and, under ``perf stat``, a counted run of fixed length for instructions per inference.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship.bench.timing import Timing, time_calls

if TYPE_CHECKING:
    from edgeship.targets.base import Runner

KEEP_TIMES = 5000  # raw latencies kept in the result (thinned evenly beyond): enough for the gate's test
COUNTED_S = 0.5  # about how long the counted run lasts


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _time(runner: Runner, feeds: dict[str, np.ndarray], spec: dict[str, Any], first: bool) -> Timing:
    return time_calls(lambda: runner.infer(feeds), min_reps=spec["min_reps"], min_time_s=spec["min_time_s"],
                      max_reps=spec["max_reps"], warmup_s=spec["warmup_s"], min_warmup=3, time_first=first,
                      target_ci=spec.get("target_ci"), max_time_s=spec.get("max_time_s"),
                      stable_warmup=spec.get("stable_warmup", False), max_warmup_s=spec.get("max_warmup_s"))


def _batch_of(feeds: dict[str, np.ndarray]) -> int:
    return int(next(iter(feeds.values())).shape[0]) if feeds else 1


def measure(runner: Runner, feeds: dict[str, np.ndarray], spec: dict[str, Any],
            batches: list[dict[str, np.ndarray]] | None = None, perf: Any = None) -> dict[str, Any]:
    rss0 = _rss_mb()
    runner.activate()
    timing = _time(runner, feeds, spec, first=True)
    latency = timing.summary()
    latency.pop("max")
    batch = _batch_of(feeds)
    stride = max(1, -(-len(timing.times_ms) // KEEP_TIMES))
    result: dict[str, Any] = {
        "latency_ms": latency,
        "repetitions": len(timing.times_ms),
        "warmup_runs": timing.warmup_runs,
        "first_inference_ms": timing.first_ms,
        "throughput_per_s": batch / (latency["mean"] / 1e3),
        "load_time_s": runner.load_time_s,
        "rss_before_load_mb": rss0,
        "stats": timing.stats(),
        "cpu_ms_per_inference": timing.cpu_ms,
        "cold_start": {"load_s": runner.load_time_s, "first_inference_ms": timing.first_ms,
                       "steady_p50_ms": latency["p50"]},
        "times_ms": [round(t, 6) for t in timing.times_ms[::stride]],
        "times_stride": stride,
    }
    if note := timing.note():
        result["notes"] = [note]
    if batches:
        result["throughput"] = [_throughput(feeds, timing)] + [_throughput(b, _time(runner, b, spec, first=False))
                                                               for b in batches]
    if perf is not None:
        runs = int(min(1000, max(5, COUNTED_S / max(latency["p50"] / 1e3, 1e-6))))
        perf.enable()
        for _ in range(runs):
            runner.infer(feeds)
        perf.disable()
        result["counted_runs"] = runs
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _throughput(feeds: dict[str, np.ndarray], timing: Timing) -> dict[str, Any]:
    batch = _batch_of(feeds)
    p50 = timing.median_ms
    return {"batch": batch, "p50_ms": p50, "rows_per_s": batch / (p50 / 1e3), "ci_rel": timing.stats()["ci_rel"],
            "stop": timing.stop, "repetitions": len(timing.times_ms)}


def _pin(cores: list[int] | None) -> list[int]:
    """Pin this process (and the threads it will start) to ``cores``; returns the affinity in force."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def main() -> None:
    spec = json.loads(sys.argv[1])
    from edgeship.core.errors import EdgeshipError

    perf = None
    try:
        affinity = _pin(spec.get("pin"))
        feeds = _load(spec["feeds"])
        batches = [_load(p) for p in spec.get("batch_feeds", [])]
        if spec.get("perf"):
            from edgeship.bench.counters import PerfControl

            perf = PerfControl(spec["perf"]["ctl"], spec["perf"]["ack"])
        if spec["kind"] == "torch":
            from edgeship.sources.loaders import load_source
            from edgeship.targets.base import get_target

            runner = get_target("torch").runner(load_source(spec["model"]), threads=spec.get("threads"))
        else:
            from edgeship.core.artifact import Model
            from edgeship.targets.base import runner_for

            opts = {"threads": spec["threads"]} if spec.get("threads") else {}
            runner = runner_for(Model.open(spec["model"]), spec.get("runtime"), **opts)
        result = measure(runner, feeds, spec, batches, perf)
        result["affinity"] = affinity
        result["pinned"] = bool(spec.get("pin"))
        result["finished_at"] = time.time()
        print(json.dumps({"ok": True, **result}))
    except EdgeshipError as exc:
        print(json.dumps({"ok": False, "error": str(exc), "exit_code": exc.exit_code}))
    finally:
        if perf is not None:
            perf.close()


if __name__ == "__main__":
    main()
