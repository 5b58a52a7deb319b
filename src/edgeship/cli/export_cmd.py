"""``edgeship export SOURCE -o OUT.onnx``: torch → ONNX with a parity check on ONNX Runtime."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_data_args, add_json_arg, print_json, with_status

DESCRIPTION = """\
Export a model to one ONNX file and prove it computes what PyTorch computes.

SOURCE is one of:
  zoo:NAME              a bundled model (zoo:minilm, zoo:efficientnet-lite0, zoo:digits-cnn)
  FILE.py:FACTORY       a Python file whose FACTORY() returns (module, example_inputs), or a dict with
                        module, example_inputs and optionally input_names, output_names, dynamic_axes
  MODEL.onnx            an existing ONNX file: validated, checked, simplified, parity against itself
  PROGRAM.pt2           a torch.export archive (needs --trust-pickle: torch.export.load unpickles)
  FOLDER/               a Hugging Face model folder (config.json): loaded offline, output
                        last_hidden_state, dynamic batch and sequence
  CKPT.pt/.pth/.bin     a pickled whole nn.Module: refused unless --trust-pickle (loading a pickle can
                        run arbitrary code); give its input shapes with --shape NAME:D0,D1,...

The torch.export-based exporter runs first; when it fails, the legacy exporter runs and the sidecar
(OUT.onnx.edgeship.json) records which one ran and why. Parity compares PyTorch eager and ONNX Runtime
per output on --data, else the model's held-out data, else its example inputs plus synthetic ones.
If parity fails, the command exits 1 naming the worst output, and KEEPS the exported file (a valid
model, worth inspecting) with the failure recorded in its sidecar. Bad input exits 2 and writes nothing.
"""

EPILOG = """\
examples:
  edgeship export zoo:digits-cnn -o digits.onnx
  edgeship export zoo:minilm -o minilm.onnx --json
  edgeship export net.py:build -o net.onnx --dynamic-batch
  edgeship export net.py:build -o net.onnx --dynamic-axis x:2:height --dynamic-axis x:3:width
  edgeship export ./my-bert-folder -o bert.onnx --opset 17 --exporter legacy
  edgeship export model.pth -o model.onnx --trust-pickle --shape x:1,3,224,224
  edgeship export net.py:build -o net.onnx --data held_out.npz --limit 32

exit codes: 0 exported and parity passed · 1 parity failed (file kept) · 2 bad input (nothing written)
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX and check parity with PyTorch",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="zoo:NAME, FILE.py:FACTORY, MODEL.onnx, PROGRAM.pt2, a Hugging "
                                                    "Face folder, or a checkpoint with --trust-pickle")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=None, metavar="N",
                   help="ONNX opset (default 18: native for the torch.export exporter and taken by "
                        "onnxruntime.quantization, onnx2tf and OpenVINO)")
    p.add_argument("--dynamic-batch", action="store_true", help="make axis 0 of every input a dynamic 'batch' dim")
    p.add_argument("--dynamic-axis", action="append", default=[], metavar="INPUT:AXIS:NAME",
                   help="make one axis dynamic, e.g. input_ids:1:sequence (repeatable; adds to what the "
                        "source declares)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim (it is kept only when parity holds)")
    p.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                   help="auto: torch.export-based first, legacy on failure (default)")
    p.add_argument("--no-parity", action="store_true", help="skip the parity check (recorded as skipped)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading pickled checkpoints and .pt2 archives (they can run code; only for "
                        "files you trust)")
    p.add_argument("--config", metavar="FILE", help="an export config (YAML/JSON, kind: export); flags override it")
    add_data_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The ExportConfig the flags describe (over --config when given)."""
    from edgeship.export.config import ExportConfig

    base = ExportConfig.load(args.config) if args.config else ExportConfig()
    changes: dict[str, Any] = {}
    if args.opset is not None:
        changes["opset"] = args.opset
    if args.dynamic_batch:
        changes["dynamic_batch"] = True
    if args.dynamic_axis:
        changes["dynamic_axes"] = tuple(base.dynamic_axes) + tuple(args.dynamic_axis)
    if args.no_simplify:
        changes["simplify"] = False
    if args.exporter != "auto":
        changes["exporter"] = args.exporter
    if args.no_parity:
        changes["parity"] = False
    if args.limit is not None:
        changes["parity_samples"] = args.limit
    return base.replace(**changes) if changes else base


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.core.data import parse_shapes
    from edgeship.core.errors import GateFailed

    config = build_config(args)
    shapes = parse_shapes(args.shape)
    try:
        model = with_status(lambda say: api.export(args.source, args.output, config, data=args.data,
                                                   trust_pickle=args.trust_pickle, shapes=shapes, progress=say),
                            args.json, "exporting")
    except GateFailed as exc:
        failed = getattr(exc, "model", None)
        if failed is not None:
            _report(failed, args.json)
        raise
    _report(model, args.json)
    return 0


def _report(model: Any, as_json: bool) -> None:
    facts = model.facts
    if as_json:
        print_json({**model.to_dict(), "size_bytes": model.size_bytes,
                    "passed": (facts.get("parity") or {}).get("passed")})
        return
    from rich.table import Table

    from edgeship.cli.common import console as stdout_console

    console = stdout_console()
    parity = facts.get("parity") or {}
    fallback = facts.get("exporter_fallback")
    how = f"{facts.get('exporter')} exporter, opset {facts.get('opset')}"
    if fallback:
        how += f" (fell back from {fallback['from']}: {fallback['why'][:120]})"
    console.print(f"{model.path}  {model.size_bytes / 1e6:.2f} MB  {how}"
                  f"{'  simplified' if facts.get('simplified') else ''}", markup=False, highlight=False)
    for kind, specs in (("in ", model.io.inputs), ("out", model.io.outputs)):
        for t in specs:
            console.print(f"  {kind} {t}", markup=False, highlight=False)
    outputs = parity.get("outputs") or {}
    if not outputs:
        console.print(f"parity: {parity.get('why', 'not checked')}", markup=False)
        return
    title = f"parity vs {parity.get('reference', 'reference')} ({parity.get('samples')} samples, {parity.get('data')})"
    table = Table(title=title)
    for col in ("output", "max_abs", "rel_err_max", "cosine_min", "top1", "verdict"):
        table.add_column(col)
    for name, m in outputs.items():
        top1 = m.get("top1_agreement")
        table.add_row(name, f"{m.get('max_abs', float('nan')):.3g}", f"{m.get('rel_err_max', float('nan')):.3g}",
                      f"{m.get('cosine_min', float('nan')):.7f}", "-" if top1 is None else f"{top1:.1%}",
                      "[green]pass[/green]" if m.get("passed") else "[red]FAIL[/red]")
    console.print(table)
