"""``edgeship convert`` (one model to one target's format) and ``edgeship targets`` (what runs here)."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import add_json_arg, print_json

CONVERT_EPILOG = """\
examples:
  edgeship convert digits.onnx --target openvino -o digits.xml
  edgeship convert digits.onnx --target tflite --precision int8 --calib data:digits-calib -o digits_int8.tflite
  edgeship convert digits.onnx --target tflite --precision int8 --set int8_io=true -o digits_int8io.tflite
  edgeship convert digits.onnx --target tflite-micro --calib data:digits-calib --set ram_bytes=65536 -o mcu.tflite
  edgeship convert zoo:digits-cnn --target executorch --precision int8 --calib data:digits-calib -o digits.pte
  edgeship convert minilm.onnx --target openvino --precision int8-weight --calib data:sentences:calib \
      --select data:sentences:select --set static_shapes=true -o minilm.xml
  edgeship convert zoo:digits-cnn --target coreml --precision palette4 -o digits.mlpackage

Targets whose converter needs PyTorch (executorch, coreml) take the source (zoo:NAME, net.py:factory);
the others take ONNX. `edgeship targets` lists precisions, options and what runs on this machine.

--select DATA: OpenVINO's int8 tries NNCF's settings (transformer scheme with and without
SmoothQuant, the generic scheme; presets for CNNs) and int8-weight its run-time activation groups
(128, 64, 32 channels per scale); each candidate is judged on DATA and its stress probes under the
gates (--gate, default the model's) with a margin in reserve, and the one that passes with the most
room (int8-weight: the coarsest, fastest, that passes) is kept. Every candidate's verdict is in the
sidecar's facts. Select on data disjoint from the calibration data and from your test data.
"""

TARGETS_EPILOG = """\
examples:
  edgeship targets
  edgeship targets --json
"""


def register(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert a model to a target's format (tflite, openvino, executorch, ...)",
                       description="Convert an ONNX model (or a PyTorch source, for targets that need it) to one "
                                   "target's format and precision; the result gets a sidecar with its provenance, "
                                   "its IO layout and measured facts (arena bytes, delegated ops, ...).",
                       epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="IN", help="model file (.onnx, .tflite) or PyTorch source "
                                                  "(zoo:NAME, net.py:factory)")
    p.add_argument("--target", "-t", required=True, metavar="NAME", help="target name (see: edgeship targets)")
    p.add_argument("--precision", "-p", default=None, metavar="P",
                   help="fp32, fp16, bf16, int8, int8-dynamic, int8-weight (OpenVINO), int8-weights and "
                        "palette4 (Core ML), as-built (OpenVINO: the file's own QDQ INT8); each target's list is "
                        "in `edgeship targets`; default: the target's first")
    p.add_argument("--calib", default=None, metavar="DATA",
                   help="calibration data for INT8: data:NAME[:SPLIT], an .npz, or a folder of .npy files")
    p.add_argument("--select", default=None, metavar="DATA",
                   help="choose the target's INT8 settings on this data and its probes (OpenVINO int8, "
                        "int8-weight): data:NAME[:SPLIT] or an .npz, disjoint from --calib")
    p.add_argument("--gate", dest="gates", action="append", default=[], metavar="EXPR",
                   help="gate the --select search judges by, e.g. cosine_min>=0.98 (repeatable; default: the "
                        "model's)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a target option (a field of its config, e.g. int8_io=true, keep_nchw=true, "
                        "model_type=transformer or auto); repeatable")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file (.tflite, .xml, .pte, .mlpackage, .engine)")
    add_json_arg(p)
    p.set_defaults(func=run)

    t = sub.add_parser("targets", help="list deployment targets: installed, runs here, precisions, why not",
                       description="Every registered target: whether its back-end is installed, whether its runtime "
                                   "can run on this machine (and why not), the precisions it offers and the "
                                   "inputs its converter takes.",
                       epilog=TARGETS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_arg(t)
    t.set_defaults(func=run_targets)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["int8_io=true", "calib_samples=50"]`` → typed values (YAML scalars: true, 50, 0.5, [1,2])."""
    import yaml

    from edgeship.core.errors import UsageError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, for example --set int8_io=true")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--set {item!r}: the value is not a valid scalar or list") from None
    return out


def run(args: argparse.Namespace) -> int:
    from edgeship import api

    precision = args.precision or api.target(args.target).precisions[0]
    options = parse_options(args.options)
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(f"converting {args.model} → {args.target} ({precision})"):
        model = api.convert(args.model, args.target, args.out, precision=precision, calib=args.calib,
                            select=args.select, gates=args.gates or None, **options)
    summary = {"path": str(model.path), "target": args.target, "precision": precision, "format": model.format,
               "size_bytes": model.size_bytes, "facts": model.facts}
    if args.json:
        print_json(summary)
        return 0
    print(f"wrote {model.path} ({model.format}, {precision}, {model.size_bytes:,} bytes)")
    for key in ("input_layout", "arena_bytes", "inference_precision"):
        if key in model.facts:
            print(f"  {key.replace('_', ' ')}: {model.facts[key]}")
    searches = [("NNCF settings", model.facts.get("nncf", {}).get("search"), "label"),
                ("activation groups", model.facts.get("activation_group_search"), "group")]
    for what, search, key in searches:
        if search:
            tried = "; ".join(f"{c[key]}: {'pass' if c['passed'] else 'fail'}" for c in search["candidates"])
            print(f"  {what}: chose {search['chosen']} (tried {tried})")
            if not any(c["passed"] for c in search["candidates"]):
                closest = next(c for c in search["candidates"] if c.get("chosen"))
                whys = [closest["selection"]["why"], *([closest["probes"]["why"]] if "probes" in closest else [])]
                print(f"  none passed the selection (gates with a margin in reserve); kept the closest: "
                      f"{'; probes: '.join(whys)}")
    if "delegation" in model.facts:
        d = model.facts["delegation"]
        print(f"  delegated nodes: {d['delegated_nodes']} (XNNPACK), portable nodes: {d['portable_nodes']}")
    if "coreml" in model.facts:
        c = model.facts["coreml"]
        print(f"  Core ML ops: {c['op_count']} ({', '.join(f'{k}×{v}' for k, v in c['ops'].items())}); "
              f"prediction: {model.facts['prediction']}")
    return 0


def run_targets(args: argparse.Namespace) -> int:
    from edgeship import api

    rows = [t.to_dict() for t in api.targets()]
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    from edgeship.targets.cpu import cpu_info

    table = Table(title=f"edgeship targets (CPU: {cpu_info().model})")
    for col in ("target", "installed", "runs here"):
        table.add_column(col, no_wrap=True)
    for col in ("precisions", "takes", "instructions here", "why not"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["target"], "yes" if r["installed"] else "no", "yes" if r["runs_here"] else "no",
                      ", ".join(r["precisions"]), ", ".join(r["takes"]),
                      "; ".join(f"{p}: {i}" for p, i in r["instructions"].items()), r["why_not"] or "")
    from edgeship.cli.common import console as stdout_console

    stdout_console().print(table)
    return 0
