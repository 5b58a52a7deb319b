"""``edgeship bench``: latency and memory of models on their runtimes, and the regression gate."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_data_args, add_json_arg, print_json
from edgeship.cli.common import console as console_

EPILOG = """\
each model is timed in a fresh process, its threads pinned to stated cores: load time and first
inference (cold start) apart; warm-up until stable; then repetitions (at least 10 and --min-time)
until the 95% confidence interval of the median is within ±--target-ci (default 2%) or --max-time
ends them (then said). Reported: p50/p90/p99 with that interval, the coefficient of variation and the
outliers (counted, not dropped), CPU time per inference, throughput (rows/s) at --batch-sizes, peak
RSS, file size, instructions per inference where `perf stat` can count them (else why not), and the
system fingerprint (CPU, flags, cores, library versions, governor, load) with --json or --out.

regression gate: --baseline OLD.json compares each model with the result stored there (as --out or
--json wrote it) by a bootstrap test on the ratio of medians; exit 1 only when the 95% interval of
the slowdown lies wholly above --max-slowdown. Results from another system are refused unless
--allow-different-system; results with other settings (batch, seq, threads, runtime) always.

examples:
  edgeship bench digits.onnx --data data:digits-test --batch 64
  edgeship bench minilm.onnx minilm-int8.onnx --data data:sentences --batch 1 --seq 32
  edgeship bench zoo:minilm --data data:sentences --seq 32        # PyTorch eager baseline
  edgeship bench detector.onnx --data data:synthetic --shape images:1,3,640,640
  edgeship bench model.onnx --batch-sizes 1,8,32 --out base.json
  edgeship bench model.onnx --baseline base.json --max-slowdown 5%

exit codes: 0 ok (or no regression shown) · 1 a regression beyond --max-slowdown · 2 bad input
"""


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure latency, throughput and memory per model; gate regressions",
                       description="Benchmark models on their runtimes, each in a fresh process.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model files, or zoo:NAME / file.py:factory for PyTorch eager")
    add_data_args(p)
    p.add_argument("--runtime", default=None, help="runtime (default: by file format, e.g. onnxruntime)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--batch-sizes", default=None, metavar="B,B,...",
                   help="also measure throughput at these batch sizes, e.g. 1,8,32")
    p.add_argument("--seq", type=int, default=None, help="sequence length for text models")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads, pinned to as many cores "
                                                              "(default: usable cores)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the benchmark to cores")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed repetitions at least (default 2)")
    p.add_argument("--max-time", type=float, default=None,
                   help="cap on the timed repetitions in seconds when the interval is not reached (default 30)")
    p.add_argument("--target-ci", default=None, metavar="PCT",
                   help="repeat until the median's 95%% interval is within ±PCT (default 2%%; 0 = no target)")
    p.add_argument("--no-count", action="store_true", help="do not count instructions with perf stat")
    p.add_argument("--out", default=None, metavar="FILE", help="write the results (JSON) to FILE: a baseline")
    p.add_argument("--baseline", default=None, metavar="OLD.json", help="compare with a stored result (exit 1 on "
                                                                        "a regression)")
    p.add_argument("--max-slowdown", default="5%", metavar="PCT", help="slowdown allowed by --baseline (default 5%%)")
    p.add_argument("--allow-different-system", action="store_true",
                   help="compare with a baseline timed on another system (CPU, cores, library versions)")
    add_json_arg(p)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    from edgeship.bench.harness import BenchConfig
    from edgeship.bench.regression import parse_slowdown
    from edgeship.core.data import parse_shapes
    from edgeship.core.errors import UsageError

    try:
        sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b.strip()) if args.batch_sizes else ()
    except ValueError:
        raise UsageError(f"--batch-sizes {args.batch_sizes!r}: give whole numbers, e.g. 1,8,32") from None
    fields: dict[str, Any] = {"batch": args.batch, "seq": args.seq, "shapes": parse_shapes(args.shape),
                              "threads": args.threads, "runtime": args.runtime, "min_time_s": args.min_time,
                              "batch_sizes": sizes, "pin_threads": not args.no_pin,
                              "count_instructions": not args.no_count}
    if args.max_time is not None:
        fields["max_time_s"] = args.max_time
    if args.target_ci is not None:
        target = parse_slowdown(args.target_ci) if args.target_ci.strip() not in ("0", "0%") else 0.0
        fields["target_ci"] = target or None
    config = BenchConfig(**fields)
    return config if config.max_time_s >= config.min_time_s else config.replace(max_time_s=config.min_time_s)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.core import atomic
    from edgeship.core.progress import progress_bar

    config = build_config(args)
    results = []
    with progress_bar("benchmarking", total=len(args.models)) as advance:
        for m in args.models:
            results.append(api.bench(m, args.data, config))
            advance()
    if args.out:
        atomic.write_json(args.out, results if len(results) > 1 else results[0])
    comparisons = (api.bench_compare(args.baseline, results, args.max_slowdown,
                                     allow_different_system=args.allow_different_system) if args.baseline else [])
    for r, c in zip(results, comparisons, strict=False):
        r["comparison"] = c.to_dict()
    if args.json:
        print_json(results if len(results) > 1 else results[0])
    else:
        print_table(results, args)
    return 1 if any(c.regressed for c in comparisons) else 0


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table("model", "p50 ms", "±95%", "p90 ms", "p99 ms", "CV", "outliers", "CPU ms", "rows/s", "load s",
                  "1st ms", "peak RSS MB", "size MB", "reps", box=None)
    for r in results:
        lat, st = r["latency_ms"], r["stats"]
        out = st["outliers"]
        table.add_row(r["model"], f"{lat['p50']:.3f}", "–" if st["ci_rel"] is None else f"{st['ci_rel']:.1%}",
                      f"{lat['p90']:.3f}", f"{lat['p99']:.3f}", f"{st['cv']:.2f}", f"{out['low'] + out['high']}",
                      f"{r['cpu_ms_per_inference']:.3f}", f"{r['throughput_per_s']:.1f}", f"{r['load_time_s']:.2f}",
                      f"{r['first_inference_ms']:.1f}", f"{r['peak_rss_mb']:.0f}",
                      "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f}", str(r["repetitions"]))
    console = console_()
    console.print(table)
    base = results[0]["latency_ms"]["p50"]
    if len(results) > 1:
        console.print("speed-up vs first: " + ", ".join(f"{base / r['latency_ms']['p50']:.2f}×" for r in results))
    for r in results:
        if len(r.get("throughput", [])) > 1:
            console.print(f"{r['model']} throughput: " + ", ".join(
                f"batch {t['batch']}: {t['rows_per_s']:.1f} rows/s" for t in r["throughput"]))
        ins = r["instructions"]
        console.print(f"{r['model']} instructions per inference: "
                      + (f"{ins['per_inference']:.4g}" if ins["per_inference"] else f"not counted: {ins['why_not']}"))
        for note in r.get("notes", []):
            console.print(f"[yellow]note: {note}[/]")
        if c := r.get("comparison"):
            colour = {"regression": "red", "faster": "green"}.get(c["verdict"], "default")
            console.print(f"[{colour}]{r['model']} vs {c['baseline_model']}: {c['verdict']}: {c['why']}[/]")
    for note in {r["busy"] for r in results if r.get("busy")}:
        console.print(f"[yellow]warning: {note}[/]")
    s = results[0]["system"]
    pins = results[0].get("affinity") if results[0].get("pinned") else None
    console.print(f"[dim]{s['cpu']} · {s['usable_cores']} cores · threads {results[0]['threads']}"
                  + (f" pinned to cores {','.join(map(str, pins))}" if pins else " (not pinned)")
                  + f" · batch {args.batch}{'' if args.seq is None else f' · seq {args.seq}'}"
                  + f" · load {s.get('load_avg')} · governor {s.get('governor')}"
                  + f" · fingerprint {s.get('fingerprint')}[/]")
