"""``edgeship check``: compare candidates with a reference on the same inputs, with accuracy gates."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_data_args, add_json_arg, print_json
from edgeship.cli.common import console as console_

EPILOG = """\
the reference is a golden .npz (from --save-golden), a PyTorch source (zoo:NAME, file.py:factory, .pt2)
run eagerly, or a model file; candidates run on their own runtimes.

metrics per output: max_abs, mean_abs, rel_err_max (max_abs / max|ref|), cosine_mean, cosine_min (per
sample row), snr_db; classifiers: top1_agreement, top1_agreement_confident (rows where the reference's
top-1 softmax beats its top-2 by more than 0.1), top5_agreement; accuracy / accuracy_drop (points) when
the data has labels. Every figure carries its n; a mean its 95% interval; a worst case names its sample.
A gate met by less than its noise margin is reported as marginal.

default gates by precision: fp32 rel_err_max<=1e-4 and cosine_min>=0.99999; fp16 rel_err_max<=1e-2 and
cosine_min>=0.999; int8/int4/mixed: the model's task gate (MiniLM cosine_mean>=0.995, cosine_min>=0.98;
classifiers top1_agreement_confident>=0.99 and top5_agreement>=0.99, plus accuracy_drop<=1 with labels;
the former classifier gate is --gate top1_agreement>=0.99). The tightest tolerance that would have
passed is printed.

stress probes: besides the data, every check runs probes built from the model's inputs and task
(shortest and longest texts, special tokens only, repeated tokens; constant, very dark, very bright,
noisy and colour-cast images; inputs at the edges of the calibration range), judged by the same gates
(--probe-gate to change them). A candidate passes only when the data and the probes both pass
(--probes report to show them without gating, --no-probes to skip them).

examples:
  edgeship check zoo:digits-cnn digits.onnx --data data:digits-test
  edgeship check zoo:minilm minilm.onnx minilm-int8.onnx --gate 'cosine_min>=0.98' --save-golden golden.npz
  edgeship check golden.npz minilm-int8.onnx --json
  edgeship check model.onnx model-fp16.onnx --data data:synthetic --shape input:1,3,320,320

exit codes: 0 every candidate passed · 1 a gate failed · 2 bad input, or a candidate that cannot run here
(TensorRT without an NVIDIA GPU, Core ML off macOS: never counted as passed)
"""


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="compare candidates with a reference under accuracy gates",
                       description="Run a reference and candidates on the same inputs and judge each candidate.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="golden .npz, zoo:NAME, file.py:factory, .pt2, or a model file")
    p.add_argument("candidates", nargs="+", help="model files to judge")
    add_data_args(p)
    p.add_argument("--gate", action="append", default=[], metavar="EXPR",
                   help="e.g. cosine_min>=0.98 or accuracy_drop<=0.5 (repeatable; replaces the defaults)")
    p.add_argument("--probe-gate", action="append", default=[], metavar="EXPR",
                   help="gate for the stress probes (repeatable; default: the same gates as the data)")
    p.add_argument("--probes", choices=("gate", "report"), default="gate",
                   help="gate: a candidate must pass the probes too (default); report: show them only")
    p.add_argument("--no-probes", action="store_true", help="do not run the stress probes")
    p.add_argument("--runtime", default=None, help="runtime for the candidates (default: by file format)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: usable cores)")
    p.add_argument("--save-golden", metavar="NPZ", help="save the inputs and reference outputs as a golden .npz")
    p.add_argument("--trust-pickle", action="store_true", help="allow loading pickle checkpoints (runs their code)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.check.comparator import CheckConfig
    from edgeship.core.data import parse_shapes

    config = CheckConfig(gates=tuple(args.gate), shapes=parse_shapes(args.shape), limit=args.limit,
                         runtime=args.runtime, threads=args.threads, trust_pickle=args.trust_pickle,
                         probes=not args.no_probes, probe_gates=tuple(args.probe_gate),
                         probes_gated=args.probes == "gate")
    result = api.check(args.reference, args.candidates, args.data, config, progress=not args.json)
    if args.save_golden:
        result.save_golden(args.save_golden, {"reference": result.reference, "data": result.data})
    if args.json:
        print_json(result.to_dict())
    else:
        print_check(result)
        if args.save_golden:
            print(f"golden outputs saved to {args.save_golden}")
    return result.exit_code


def print_check(result: Any) -> None:
    from rich.table import Table

    console = console_()
    console.print(f"reference [bold]{result.reference}[/] on {result.data}: "
                  f"{result.samples} samples, {result.rows} rows")
    cols = ["max_abs", "rel_err_max", "cosine_mean", "cosine_min", "snr_db", "top1_agreement", "accuracy",
            "accuracy_drop"]
    for cand in result.candidates:
        colour = {"pass": "green", "fail": "red"}.get(cand.status, "yellow")
        console.print(f"[{colour}]{cand.status.upper()}[/] {cand.name} ({cand.precision}): {cand.why}")
        if not cand.outputs:
            continue
        shown = [c for c in cols if any(c in m for m in cand.outputs.values())]
        table = Table("output", *shown, box=None, pad_edge=False)
        for name, m in cand.outputs.items():
            table.add_row(name, *[_fmt(m.get(c)) for c in shown])
        console.print(table)
        for line in verdict_lines(cand):
            console.print(f"  {line}")
        if cand.tightest:
            console.print(f"  tightest passing tolerance: {', '.join(cand.tightest)}")
        if cand.first_divergence:
            d = cand.first_divergence
            console.print(f"  error first appears at tensor {d['tensor']!r} (node {d['node']!r}, {d['op_type']}): "
                          f"cosine_min {d['cosine_min']:.6f}, rel_err_max {d['rel_err_max']:.3g}")


def verdict_lines(cand: Any) -> list[str]:
    """The held-out worst case beside the probes' worst case, each with its n, interval and sample
    (the same lines as the optimize report's)."""
    from edgeship.report.writers import verdict_stats

    return verdict_stats({"metrics": cand.summary, "stats": cand.stats, "n": cand.rows, "probes": cand.probes,
                          "gate": {"marginal": cand.marginal + (cand.probes or {}).get("marginal", [])}})


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6f}" if 1e-3 <= abs(v) < 1e3 else f"{v:.3g}"
    return str(v)
