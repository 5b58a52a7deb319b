"""edgeship's benchmark against a minimal hand-written timing loop, in the same run.

    .venv/bin/python benchmarks/harness.py [--model minilm-int8.onnx] [--rounds 3] [--seq 32] [--threads 2]

Without ``--model`` it exports MiniLM (zoo:minilm) and quantizes it to INT8 (dynamic), in a cache
folder. Then, in alternating rounds so that load from other processes hits both alike:

- ``edgeship bench`` (``edgeship.bench.harness.bench``: a fresh process, pinned threads, warm-up
  until stable, repetitions until the median is known to ±2%), and
- a hand-written loop: an ``onnxruntime.InferenceSession`` opened here with the session options
  edgeship's runner uses (intra-op threads, one inter-op thread, all graph optimisations), one second
  of warm-up, then ``perf_counter`` around ``session.run`` for ``--loop-s`` seconds.

This script opens its own ONNX Runtime session on purpose: the hand-written loop is the baseline
edgeship's figure is compared against, so it must not go through edgeship's runner or timing loop.
It prints every round's p50 from both, how far edgeship's rounds agree with each other (target:
within 3%), and edgeship's median p50 over the hand loop's (target: within 5%), with the CPU and the
load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("USE_TF", "0")

CACHE = Path(tempfile.gettempdir()) / "edgeship-bench-harness"


def minilm_int8() -> Path:
    """MiniLM exported and quantized to INT8 (dynamic), made once into CACHE."""
    out = CACHE / "minilm-int8.onnx"
    if out.is_file():
        return out
    from edgeship import api
    from edgeship.compress.quantize.configs import Int8DynamicConfig

    CACHE.mkdir(parents=True, exist_ok=True)
    fp32 = api.export("zoo:minilm", CACHE / "minilm.onnx")
    api.quantize(fp32, Int8DynamicConfig(), out=out)
    return out


def hand_loop(model: Path, feeds: dict, threads: int, loop_s: float) -> float:
    """p50 (ms) of a plain loop over a session opened here: the baseline edgeship is compared against."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    inputs = {k: v for k, v in feeds.items() if k in names}
    t_end = time.perf_counter() + 1.0
    while time.perf_counter() < t_end:
        session.run(None, inputs)
    times = []
    t_end = time.perf_counter() + loop_s
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="an ONNX file (default: MiniLM INT8, made here)")
    ap.add_argument("--data", default="data:sentences", help="data for the feed (default data:sentences)")
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loop-s", type=float, default=5.0, help="seconds of the hand-written loop per round")
    args = ap.parse_args()

    from edgeship.bench.harness import bench, fixed_feeds
    from edgeship.bench.sysinfo import load_average, system_info
    from edgeship.sources.subject import resolve_subject

    model = args.model or minilm_int8()
    feeds = fixed_feeds(resolve_subject(str(model)), args.data, 1, args.seq, None)
    load_before = load_average()
    ours, hand, cis = [], [], []
    for k in range(args.rounds):
        r = bench(str(model), data=args.data, seq=args.seq, threads=args.threads)
        ours.append(r["latency_ms"]["p50"])
        cis.append(r["stats"]["ci_rel"])
        hand.append(hand_loop(model, feeds, args.threads, args.loop_s))
        print(f"round {k + 1}: edgeship bench p50 {ours[-1]:.4f} ms (±{cis[-1]:.1%}, {r['repetitions']} runs, "
              f"stop: {r['stats']['stop']})   hand-written loop p50 {hand[-1]:.4f} ms", flush=True)
    s = system_info()
    spread = max(ours) / min(ours) - 1
    ratio = statistics.median(ours) / statistics.median(hand)
    print(f"\nmodel {model} · batch 1 · seq {args.seq} · threads {args.threads}")
    print(f"{s['cpu']} · {s['usable_cores']} cores · flags {' '.join(s['flags'])}")
    print(f"load average before {load_before}, after {load_average()}")
    print(f"edgeship bench p50 over {args.rounds} runs: {', '.join(f'{x:.4f}' for x in ours)} ms; "
          f"spread (max/min - 1) {spread:.2%}  (target: within 3%)")
    print(f"edgeship median p50 / hand-written loop median p50: {ratio:.4f}  (target: within 5% of 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
