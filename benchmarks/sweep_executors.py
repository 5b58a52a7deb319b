"""One optimize sweep on each executor: the same rows, verdicts and choices, and the wall time of the
independent (non-timing) jobs.

    .venv/bin/python benchmarks/sweep_executors.py [--executors sequential,local,ray] [--limit 200]

The default sweep is zoo:digits-cnn with 7 variants (fp32, fp16, int8-dynamic, int8-static, mixed,
prune-30, prune-50) on ONNX Runtime and OpenVINO: 12 variant × target rows (the others are
skipped: OpenVINO has no int8-dynamic or mixed conversion). Each executor runs it from scratch in
its own folder. ``ray`` starts a Ray head on 127.0.0.1 for the run (``ray start --head --block``)
and stops it by its process id afterwards.

Printed: each executor's rows, the wall time of its builds, conversions and checks
(``jobs_wall_s``: the sweep phase less the timed jobs that ran alone) and of its timed jobs,
whether rows, verdicts and choices match the first executor's, the local/sequential ratio of the
jobs' wall time (target on 2 cores: at most 0.7), and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("USE_TF", "0")

VARIANTS = "fp32,fp16,int8-dynamic,int8-static,mixed,prune-30,prune-50"


def ray_head(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # loopback only
    with open(log, "w") as out:
        head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head",
                                 "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false",
                                 "--disable-usage-stats", "--object-store-memory=200000000", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None or time.time() > deadline:
            raise SystemExit(f"ray head did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return head, f"127.0.0.1:{port}"


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    return {r["id"]: (r["status"], r["gate"]["passed"], r["chosen"]) for r in report["variants"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="zoo:digits-cnn")
    ap.add_argument("--variants", default=VARIANTS)
    ap.add_argument("--targets", default="onnxruntime,openvino")
    ap.add_argument("--executors", default="sequential,local,ray")
    ap.add_argument("--limit", type=int, default=200, help="held-out samples")
    ap.add_argument("--min-time", type=float, default=0.5, help="benchmark seconds per row")
    args = ap.parse_args()

    from edgeship.bench.sysinfo import load_average, system_info
    from edgeship.pipeline.executors import ExecutorConfig
    from edgeship.pipeline.optimize import optimize
    from edgeship.pipeline.recipe import OptimizeRecipe

    tmp = Path(tempfile.mkdtemp(prefix="edgeship-sweeps-"))
    load_before = load_average()
    reports: dict[str, dict[str, Any]] = {}
    head = None
    try:
        for name in args.executors.split(","):
            if name == "ray":
                head, address = ray_head(tmp / "ray-head.log")
                config = ExecutorConfig(executor="ray", address=address)
            else:
                config = ExecutorConfig(executor=name)
            recipe = OptimizeRecipe(model=args.model, out=str(tmp / name), limit=args.limit,
                                    variants=tuple(args.variants.split(",")), targets=tuple(args.targets.split(",")),
                                    bench_min_time_s=args.min_time, variant_options={"mixed": {"time_budget_s": 60}})
            t0 = time.perf_counter()
            reports[name] = optimize(recipe, config)
            ex = reports[name]["executor"]
            print(f"{name:<11} {len(reports[name]['variants'])} rows · total {time.perf_counter() - t0:7.1f} s · "
                  f"jobs {ex['jobs_wall_s']:7.1f} s · timed alone {ex['timed_wall_s']:6.1f} s · {ex}", flush=True)
    finally:
        if head is not None:
            head.send_signal(signal.SIGTERM)
            head.wait(timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    first = next(iter(reports))
    for name, rep in reports.items():
        same = outcome(rep) == outcome(reports[first])
        chosen = {r["target"]: r["variant"] for r in rep["variants"] if r["chosen"]}
        print(f"{name:<11} rows, verdicts and choices {'==' if same else '!='} {first}'s · chosen {chosen}")
    if "local" in reports and "sequential" in reports:
        ratio = reports["local"]["executor"]["jobs_wall_s"] / reports["sequential"]["executor"]["jobs_wall_s"]
        print(f"local / sequential wall time of the non-timing jobs: {ratio:.2f}  (target on 2 cores: <= 0.7)")
    s = system_info()
    print(f"{s['cpu']} · {s['usable_cores']} cores · load average before {load_before}, after {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
