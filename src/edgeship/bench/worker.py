"""The benchmark worker: loads one model in a fresh process, times it, prints JSON on stdout.

A fresh process per model keeps peak RSS and load time honest and keeps one runtime's thread pools
from disturbing another's timings. Invoked by ``edgeship.bench.harness``; not a user command.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship.bench.timing import time_calls

if TYPE_CHECKING:
    from edgeship.targets.base import Runner


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(runner: Runner, feeds: dict[str, np.ndarray], warmup_s: float, min_time_s: float, min_reps: int,
            max_reps: int) -> dict[str, Any]:
    rss0 = _rss_mb()
    runner.activate()
    timing = time_calls(lambda: runner.infer(feeds), min_reps=min_reps, min_time_s=min_time_s, max_reps=max_reps,
                        warmup_s=warmup_s, min_warmup=3, time_first=True)
    latency = timing.summary()
    latency.pop("max")
    batch = int(next(iter(feeds.values())).shape[0]) if feeds else 1
    return {
        "latency_ms": latency,
        "repetitions": len(timing.times_ms),
        "warmup_runs": timing.warmup_runs,
        "first_inference_ms": timing.first_ms,
        "throughput_per_s": batch / (latency["mean"] / 1e3),
        "load_time_s": runner.load_time_s,
        "rss_before_load_mb": rss0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    from edgeship.core.errors import EdgeshipError

    try:
        with np.load(spec["feeds"], allow_pickle=False) as z:
            feeds = {k: z[k] for k in z.files}
        if spec["kind"] == "torch":
            from edgeship.sources.loaders import load_source
            from edgeship.targets.base import get_target

            runner = get_target("torch").runner(load_source(spec["model"]), threads=spec.get("threads"))
        else:
            from edgeship.core.artifact import Model
            from edgeship.targets.base import runner_for

            opts = {"threads": spec["threads"]} if spec.get("threads") else {}
            runner = runner_for(Model.open(spec["model"]), spec.get("runtime"), **opts)
        result = measure(runner, feeds, spec["warmup_s"], spec["min_time_s"], spec["min_reps"], spec["max_reps"])
        print(json.dumps({"ok": True, **result}))
    except EdgeshipError as exc:
        print(json.dumps({"ok": False, "error": str(exc), "exit_code": exc.exit_code}))


if __name__ == "__main__":
    main()
