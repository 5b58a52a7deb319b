"""``edgeship quantize IN.onnx --method METHOD [--calib DATA] -o OUT.onnx``."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_json_arg, print_json, with_status

DESCRIPTION = """\
Quantize an ONNX model. Methods:
  fp16          FP16 weights and compute; FP32 inputs/outputs kept; ops on --op-block-list stay FP32
  int8-dynamic  INT8 weights (per channel), activations quantized at run time; no data needed, except
                with --smooth-alpha (SmoothQuant-style smoothing of activation outliers, calibrated)
  int8-static   INT8 QDQ with activation ranges calibrated on --calib (minmax, entropy, percentile)
  int4-weight   4-bit (or --bits 8) block-wise weights (MatMulNBits), embedding table as 4-bit Gather
  mixed         accuracy-aware: tries int8 variants, ranks nodes by sensitivity and keeps the fewest,
                most sensitive ones in FP32 until --gate passes on held-out data (--eval, else the
                calibration source's select split, else a part of --calib kept out of calibration) and
                on stress probes, with --margin to spare, within --time-budget; --verify DATA must pass too

The output's sidecar (OUT.onnx.edgeship.json) records the config, the nodes kept in FP32 and, for
mixed, why each was kept (its sensitivity), what it costs (size, latency) and the gate verdict.
Calibration data is checked first: empty, too few samples, NaN/Inf, constant, wrong shape or
dtype all stop with a one-line error (exit 2) and nothing is written.
"""

EPILOG = """\
examples:
  edgeship quantize minilm.onnx --method int8-dynamic -o minilm.int8.onnx
  edgeship quantize minilm.onnx --method int8-dynamic --smooth-alpha 0.7 --calib data:sentences:calib -o m.onnx
  edgeship quantize digits.onnx --method int8-static --calib data:digits-calib --calibration entropy -o d8.onnx
  edgeship quantize minilm.onnx --method int4-weight --block-size 32 -o minilm.int4.onnx
  edgeship quantize minilm.onnx --method fp16 -o minilm.fp16.onnx
  edgeship quantize minilm.onnx --method mixed --calib data:sentences:calib \\
      --gate 'cosine_mean>=0.995' --gate 'cosine_min>=0.98' --time-budget 300 -o minilm.mixed.onnx
  edgeship quantize model.onnx --config int8.yaml -o out.onnx      # a config file (kind: int8-static, ...)

exit codes: 0 written · 1 mixed found no variant meeting the gate (closest kept) · 2 bad input
"""

# Flags whose names differ from their config field (the rest are the field names with dashes).
FLAG_NAMES = {"op_types_exclude": "exclude-op-types", "op_types_include": "include-op-types",
              "nodes_to_exclude": "exclude-nodes", "gates": "gate", "time_budget_s": "time-budget"}


def _method_names() -> list[str]:
    from edgeship.compress.quantize.configs import QuantConfig
    from edgeship.core.config import config_kinds

    return sorted(k for k, c in config_kinds().items() if issubclass(c, QuantConfig))


def register(subparsers: Any) -> None:
    from edgeship.cli.config_flags import ConfigFlags
    from edgeship.core.config import config_kinds

    p = subparsers.add_parser("quantize", help="quantize an ONNX model (fp16, int8, int4, accuracy-aware mixed)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="IN.onnx", help="the ONNX model to quantize")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the quantized ONNX file to write")
    p.add_argument("--method", choices=_method_names(), default=None, help="quantization method (or --config)")
    p.add_argument("--config", metavar="FILE", help="a quantization config (YAML/JSON with kind); flags override it")
    p.add_argument("--calib", metavar="DATA", help="calibration data: data:NAME[:SPLIT], an .npz, a folder of .npy")
    p.add_argument("--eval", metavar="DATA", help="mixed: held-out data to select on (default: the calibration "
                   "source's select split, e.g. data:sentences:select, else part of --calib)")
    p.add_argument("--verify", metavar="DATA", help="mixed: held-out data, disjoint from both, that the choice must "
                   "also pass with the stress probes (e.g. data:sentences:test)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N calibration samples")
    p.add_argument("--shape", action="append", default=[], metavar="NAME:D0,D1,...",
                   help="fix an input's shape for data:synthetic (repeatable)")
    # one flag per field of the method configs; a flag applies to the methods whose config has it
    flags = ConfigFlags(p, [config_kinds()[m] for m in _method_names()], names=FLAG_NAMES, skip=("candidates",),
                        not_applicable="{flag} does not apply to --method {kind}; see edgeship quantize --help")
    add_json_arg(p)
    p.set_defaults(func=run, config_flags=flags)


def build_config(args: argparse.Namespace) -> Any:
    """The config the flags describe: --config as the base (or the method's defaults), flags on top."""
    from edgeship.compress.quantize.configs import QuantConfig
    from edgeship.core.config import config_kinds
    from edgeship.core.errors import UsageError

    if args.config:
        base = QuantConfig.load(args.config)
        if args.method and args.method != base.kind:
            raise UsageError(f"--method {args.method} contradicts {args.config!r} (kind {base.kind}); drop one")
    elif args.method:
        base = config_kinds()[args.method]()
    else:
        raise UsageError("give --method (fp16, int8-dynamic, int8-static, int4-weight, mixed) or --config FILE")
    return args.config_flags.build(args, base)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data, parse_shapes
    from edgeship.core.errors import GateFailed

    config = build_config(args)
    src = Model.open(args.model)
    shapes = parse_shapes(args.shape)
    calib = load_data(args.calib, src.io, shapes=shapes, limit=args.limit) if args.calib else None
    eval_data = load_data(args.eval, src.io, shapes=shapes) if args.eval else None
    verify = load_data(args.verify, src.io, shapes=shapes) if args.verify else None
    try:
        model = with_status(lambda say: api.quantize(src, config, out=args.output, calib=calib, eval_data=eval_data,
                                                     progress=say, verify_data=verify), args.json, "quantizing")
    except GateFailed as exc:
        failed = getattr(exc, "model", None)
        if failed is not None:
            _report(src, failed, args.json)
        raise
    _report(src, model, args.json)
    return 0


def _report(src: Any, model: Any, as_json: bool) -> None:
    facts = model.facts
    if as_json:
        print_json({**model.to_dict(), "size_bytes": model.size_bytes, "input_size_bytes": src.size_bytes})
        return
    from rich.console import Console

    console = Console()
    console.print(f"{model.path}  {facts.get('method')}  {model.size_bytes / 1e6:.2f} MB "
                  f"({facts.get('size_ratio', 0):.1%} of {src.size_bytes / 1e6:.2f} MB)  "
                  f"in {facts.get('quantize_time_s')} s", markup=False, highlight=False)
    kept = facts.get("nodes_kept_fp32") or []
    if facts.get("method") == "mixed":
        gate = facts.get("gate") or {}
        console.print(f"base: {facts.get('base_label')}; gate {'PASSED' if gate.get('passed') else 'FAILED'} on "
                      f"{gate.get('samples')} held-out samples ({gate.get('data')}): {gate.get('why')}",
                      markup=False, highlight=False)
        for row in facts.get("kept_fp32") or []:
            console.print(f"  FP32 {row['node']} ({row['op']}): {row['why']}; costs "
                          f"{row['size_cost_bytes'] / 1e3:.0f} kB, {row['latency_cost_ms']:+.3f} ms",
                          markup=False, highlight=False)
        for c in facts.get("candidates") or []:
            console.print(f"  candidate {c['base']}: {'pass' if c['passed'] else 'fail'} with {c['fp32_nodes']} FP32 "
                          f"node(s); {c['final_why']}", markup=False, highlight=False)
    elif kept:
        console.print(f"kept in float: {', '.join(kept)}", markup=False, highlight=False)
