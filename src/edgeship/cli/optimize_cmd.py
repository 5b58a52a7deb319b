"""``edgeship optimize``: the whole matrix (variants × targets), judged and timed, into one report."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
steps: export to ONNX (FP32) → golden outputs on held-out data (PyTorch eager for a torch source) →
build each variant → convert per target → check against the golden outputs on the target runtime →
benchmark → report. The run folder keeps the recipe, every file, each step's record and the reports:
report.json (for tools), report.md and report.html. Re-running reuses the steps whose inputs did not change
(and that the same edgeship code and library versions made), so a killed sweep resumes where it stopped.

jobs: builds, conversions and checks are independent jobs, run in parallel (as many at once as the usable
cores, --workers N: one in this process, the others in worker processes that load the model meanwhile,
the longest jobs first; builds that train start beside the export) or on a Ray cluster (--executor ray
--address HOST:PORT, with the edgeship[ray] extra, edgeship on every node and the run folder on a
filesystem they share). Benchmarks, and builds that time candidates (mixed, after the other jobs), run
alone: nothing else runs on their machine meanwhile.

examples:
  edgeship optimize --model zoo:digits-cnn --data data:digits-test --out runs/digits
  edgeship optimize --model zoo:minilm --data data:sentences --seq 32 --out runs/minilm
  edgeship optimize recipe.yaml
  edgeship optimize --model net.py:build --data inputs.npz --gate 'cosine_min>=0.99'
  edgeship optimize recipe.yaml --executor ray --address 127.0.0.1:6379

exit codes: 0 a variant passed its gate on every target · 1 no variant passed on some target · 2 bad input
"""


def register(sub: Any) -> None:
    p = sub.add_parser("optimize", help="export, build variants, check, benchmark and report in one run",
                       description="Run the optimize pipeline from flags or a recipe YAML.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="a recipe YAML/JSON file (flags below override its fields)")
    p.add_argument("--model", help="zoo:NAME, file.py:factory, model.pt2, a Hugging Face folder, or model.onnx")
    p.add_argument("--data", help="held-out evaluation data (default: the model's own)")
    p.add_argument("--calib", help="calibration data (default: the model's own)")
    p.add_argument("--out", help="run folder (default runs/<model name>)")
    p.add_argument("--variants", help="comma-separated variants (default fp32,fp16,int8-dynamic,int8-static,"
                                      "int4-weight,mixed; also int8-weight, prune-30, prune-50, distill-half, "
                                      "qat-int8, qat-int4)")
    p.add_argument("--targets", help="comma-separated targets (default onnxruntime)")
    p.add_argument("--gate", action="append", default=None, metavar="EXPR",
                   help="gate for lossy variants, e.g. cosine_min>=0.98 (repeatable; default: the model's)")
    p.add_argument("--batch", type=int, help="benchmark batch size (default 1)")
    p.add_argument("--seq", type=int, help="benchmark sequence length for text models (default 32)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: usable cores)")
    p.add_argument("--limit", type=int, help="use at most N held-out samples")
    p.add_argument("--map", metavar="TARGETS",
                   help="also map the ONNX rows on these map targets, e.g. edgetpu,qnn-htp (edgeship map "
                        "--list-targets); each target's own map is always made")
    p.add_argument("--max-partitions", type=int, metavar="N",
                   help="map gate: a row whose map has more partitions fails")
    p.add_argument("--require-full-offload", action="store_true",
                   help="map gate: a row fails unless its map puts every node on the first unit")
    p.add_argument("--max-fallback-nodes", type=int, metavar="N", help="map gate: a row fails above N fallback nodes")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickle checkpoints (runs their code)")
    p.add_argument("--task", metavar="TASK",
                   help="a Hugging Face folder's task, an Optimum task name such as image-classification or "
                        "feature-extraction (default: what its config.json's architecture says)")
    p.add_argument("--shape", action="append", default=None, metavar="NAME:D0,D1,...",
                   help="fix an ONNX source's symbolic input dims (-1, named), e.g. input:1,3,224,224 (repeatable)")
    p.add_argument("--executor", choices=("local", "sequential", "ray"), default="local",
                   help="where the independent jobs run: this process and worker processes, parallel where the "
                        "cores allow (default), one after another in this process, or a Ray cluster (needs "
                        "--address; edgeship[ray])")
    p.add_argument("--address", default=None, metavar="HOST:PORT", help="the Ray head's address (--executor ray)")
    p.add_argument("--workers", type=int, default=None,
                   help="jobs at once (default: usable cores; on Ray, the cluster's CPUs)")
    p.add_argument("--json", action="store_true", help="print the report JSON")
    p.set_defaults(func=run)


def build_recipe(args: argparse.Namespace) -> Any:
    from edgeship.core.errors import UsageError
    from edgeship.pipeline.recipe import OptimizeRecipe

    base: dict[str, Any] = OptimizeRecipe.load(args.recipe).to_dict() if args.recipe else {}
    base.pop("kind", None)
    flags = {"model": args.model, "data": args.data, "calib": args.calib, "out": args.out, "batch": args.batch,
             "seq": args.seq, "threads": args.threads, "limit": args.limit, "task": args.task,
             "max_partitions": args.max_partitions, "max_fallback_nodes": args.max_fallback_nodes}
    base.update({k: v for k, v in flags.items() if v is not None})
    if args.variants:
        base["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.targets:
        base["targets"] = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.gate:
        base["gates"] = args.gate
    if args.shape:
        from edgeship.core.data import parse_shapes

        base["shapes"] = {k: list(v) for k, v in parse_shapes(args.shape).items()}
    if args.trust_pickle:
        base["trust_pickle"] = True
    if args.map:
        base["hardware_map"] = [t.strip() for t in args.map.split(",") if t.strip()]
    if args.require_full_offload:
        base["require_full_offload"] = True
    if not base.get("model"):
        raise UsageError("give a recipe file or --model (for example: edgeship optimize --model zoo:digits-cnn)")
    return OptimizeRecipe.from_dict(base)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.pipeline.executors import ExecutorConfig
    from edgeship.pipeline.optimize import exit_code

    executor = ExecutorConfig(executor=args.executor, address=args.address, workers=args.workers)
    report = api.optimize(build_recipe(args), executor)
    if args.json:
        from edgeship.cli.common import print_json

        print_json(report)
    else:
        print_summary(report)
    return exit_code(report)


def print_summary(report: dict[str, Any]) -> None:
    from rich.table import Table

    from edgeship.cli.common import console as console_
    from edgeship.report.writers import header, table_rows

    console = console_()
    table = Table(*header(report), title=f"{report['model']}", box=None)
    for row in table_rows(report):
        table.add_row(*row)
    console.print(table)
    for target, a in report.get("recommendation", {}).items():
        console.print(f"{target}: " + (f"ship [bold]{a['variant']}[/]: " if a["ship"] else "nothing to ship: ")
                      + a["why"], highlight=False)
    for w in report.get("warnings", []):
        console.print(f"[yellow]warning: {w}[/]")
    run_dir = report["run_dir"]
    console.print(f"reports: {run_dir}/report.html · {run_dir}/report.md · {run_dir}/report.json")
