"""``edgeship bench``: latency and memory of models on their runtimes."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_data_args, add_json_arg, print_json
from edgeship.cli.common import console as console_

EPILOG = """\
each model is timed in a fresh process: load time, first inference, warm-up, then at least 10
repetitions and 2 s; p50/p90/p99 latency, throughput (rows/s), peak RSS, file size, and a system
fingerprint (CPU, flags, cores, library versions) with --json.

examples:
  edgeship bench digits.onnx --data data:digits-test --batch 64
  edgeship bench minilm.onnx minilm-int8.onnx --data data:sentences --batch 1 --seq 32
  edgeship bench zoo:minilm --data data:sentences --seq 32        # PyTorch eager baseline
  edgeship bench detector.onnx --data data:synthetic --shape images:1,3,640,640
"""


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure latency, throughput and memory per model",
                       description="Benchmark models on their runtimes, each in a fresh process.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model files, or zoo:NAME / file.py:factory for PyTorch eager")
    add_data_args(p)
    p.add_argument("--runtime", default=None, help="runtime (default: by file format, e.g. onnxruntime)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--seq", type=int, default=None, help="sequence length for text models")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: usable cores)")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed repetitions (default 2)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.bench.harness import BenchConfig
    from edgeship.core.data import parse_shapes

    config = BenchConfig(batch=args.batch, seq=args.seq, shapes=parse_shapes(args.shape), threads=args.threads,
                         runtime=args.runtime, min_time_s=args.min_time)
    results = [api.bench(m, args.data, config) for m in args.models]
    if args.json:
        print_json(results if len(results) > 1 else results[0])
        return 0
    from rich.table import Table

    table = Table("model", "p50 ms", "p90 ms", "p99 ms", "rows/s", "load s", "peak RSS MB", "size MB", "reps",
                  box=None)
    base = results[0]["latency_ms"]["p50"]
    for r in results:
        lat = r["latency_ms"]
        table.add_row(r["model"], f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}",
                      f"{r['throughput_per_s']:.1f}", f"{r['load_time_s']:.2f}", f"{r['peak_rss_mb']:.0f}",
                      "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f}", str(r["repetitions"]))
    console = console_()
    console.print(table)
    if len(results) > 1:
        console.print("speed-up vs first: " + ", ".join(f"{base / r['latency_ms']['p50']:.2f}×" for r in results))
    for note in {r["busy"] for r in results if r.get("busy")}:
        console.print(f"[yellow]warning: {note}[/]")
    s = results[0]["system"]
    console.print(f"[dim]{s['cpu']} · {s['usable_cores']} cores · threads {results[0]['threads']} · "
                  f"batch {args.batch}{'' if args.seq is None else f' · seq {args.seq}'}[/]")
    return 0
