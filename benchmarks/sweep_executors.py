"""One optimize sweep on each executor: the same rows, verdicts and choices, and the wall time of the
independent (non-timing) jobs.

    .venv/bin/python benchmarks/sweep_executors.py [--executors sequential,local,ray] [--limit 200]

The default sweep is zoo:digits-cnn with 7 variants (fp32, fp16, int8-dynamic, int8-static, mixed,
prune-30, prune-50) on ONNX Runtime and OpenVINO: 12 variant × target rows (the others are
skipped: OpenVINO has no int8-dynamic or mixed conversion). Each executor runs it from scratch in
its own folder. ``ray`` starts a Ray head on 127.0.0.1 for the run (``ray start --head --block``)
and stops it by its process id afterwards.

Each executor's sweep runs in a fresh Python process (so none reuses the imports another paid
for), in the order given; ``--repeat N`` runs the whole round N times. Printed per run: the rows,
the wall time of the builds, conversions and checks (``jobs``: the sweep phase less the timed jobs
that ran alone), of all non-timing work (``untimed``: the whole run less the timed jobs, so the
export, the golden outputs and the workers' start are in it too) and of the timed jobs; then
whether rows, verdicts and choices match the first executor's, the local/sequential ratios of
both wall times (target on 2 cores: at most 0.7), and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
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


def run_one(args: argparse.Namespace, name: str, out: Path, address: str | None) -> dict[str, Any]:
    """One sweep in a fresh process; returns its report and the run's wall time."""
    code = ("import json, sys, time; t0 = time.perf_counter()\n"
            "from edgeship.pipeline.executors import ExecutorConfig\n"
            "from edgeship.pipeline.optimize import optimize\n"
            "from edgeship.pipeline.recipe import OptimizeRecipe\n"
            "a = json.loads(sys.argv[1])\n"
            "rep = optimize(OptimizeRecipe(**a['recipe']), ExecutorConfig(**a['executor']))\n"
            "rep['wall_s'] = time.perf_counter() - t0\n"
            "open(a['report'], 'w').write(json.dumps(rep))\n")
    recipe = {"model": args.model, "out": str(out), "limit": args.limit, "variants": args.variants.split(","),
              "targets": args.targets.split(","), "bench_min_time_s": args.min_time,
              "variant_options": {"mixed": {"time_budget_s": 60}}}
    executor = {"executor": name, **({"address": address} if address else {})}
    report = out.with_suffix(".json")
    subprocess.run([sys.executable, "-c", code, json.dumps({"recipe": recipe, "executor": executor,
                                                            "report": str(report)})],
                   check=True, env={**os.environ, "EDGESHIP_QUIET": "1"})
    return json.loads(report.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="zoo:digits-cnn")
    ap.add_argument("--variants", default=VARIANTS)
    ap.add_argument("--targets", default="onnxruntime,openvino")
    ap.add_argument("--executors", default="sequential,local,ray")
    ap.add_argument("--limit", type=int, default=200, help="held-out samples")
    ap.add_argument("--min-time", type=float, default=0.5, help="benchmark seconds per row")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all the executors")
    args = ap.parse_args()

    from edgeship.bench.sysinfo import load_average, system_info

    tmp = Path(tempfile.mkdtemp(prefix="edgeship-sweeps-"))
    load_before = load_average()
    runs: dict[str, list[dict[str, Any]]] = {}
    executors = args.executors.split(",")
    head, address = None, None
    try:
        if "ray" in executors:  # one head for every round
            head, address = ray_head(tmp / "ray-head.log")
        for k in range(args.repeat):
            for name in executors:
                rep = run_one(args, name, tmp / f"{name}-{k}", address if name == "ray" else None)
                ex = rep["executor"]
                rep["jobs_wall_s"], rep["untimed_wall_s"] = ex["jobs_wall_s"], rep["wall_s"] - ex["timed_wall_s"]
                runs.setdefault(name, []).append(rep)
                print(f"{name:<11} {len(rep['variants'])} rows · run {rep['wall_s']:6.1f} s · "
                      f"jobs {ex['jobs_wall_s']:6.1f} s · untimed {rep['untimed_wall_s']:6.1f} s · "
                      f"timed alone {ex['timed_wall_s']:6.1f} s · {ex}",
                      flush=True)
    finally:
        if head is not None:
            head.send_signal(signal.SIGTERM)
            head.wait(timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    first = next(iter(runs))
    for name, reps in runs.items():
        for rep in reps:
            same = outcome(rep) == outcome(runs[first][0])
            chosen = {r["target"]: r["variant"] for r in rep["variants"] if r["chosen"]}
            print(f"{name:<11} rows, verdicts and choices {'==' if same else '!='} {first}'s · chosen {chosen}")
    if "local" in runs and "sequential" in runs:
        for what in ("jobs", "untimed"):
            local, seq = (statistics.median(r[f"{what}_wall_s"] for r in runs[n]) for n in ("local", "sequential"))
            print(f"local / sequential wall time, {what:<7} (medians of {args.repeat}: {local:.1f} s / {seq:.1f} s): "
                  f"{local / seq:.2f}  (target on 2 cores: <= 0.7)")
    s = system_info()
    print(f"{s['cpu']} · {s['usable_cores']} cores · load average before {load_before}, after {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
