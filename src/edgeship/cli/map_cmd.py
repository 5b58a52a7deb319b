"""``edgeship map``: which of a model's operators a target's NPU, GPU and CPU run, where the graph
splits, what the split costs, and what would keep the model from loading there."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
how it decides: each node goes to the first unit of the target's policy (NPU, then GPU, then CPU)
whose versioned op-support rules take it — op type, operator version, data type, rank, dynamic
shapes, constant inputs, attributes — each rule citing the document it was read from. TFLite
targets judge the builtins onnx2tf would make of each ONNX node. Partitions are contiguous runs on
one unit; each hand-off's cost is estimated from the bytes that cross it under an assumed link
(printed with the figures). --cross-check asks the runtime that can answer here (ONNX Runtime's
per-node providers, OpenVINO's query_model, TFLite conversion, TFLite Micro's kernels, ExecuTorch's
delegation) and lists every disagreement with its explanation.

examples:
  edgeship map --list-targets
  edgeship map model.onnx --target edgetpu
  edgeship map zoo:efficientnet-lite0 --target tflite-gpu --html map.html
  edgeship map model.onnx --target qnn-htp --shape input:1,3,224,224
  edgeship map model.onnx --target onnxruntime --device-runtime 1.14 --json
  edgeship map model.onnx --target openvino-cpu --cross-check
  edgeship map model.onnx --target coreml-ane --max-partitions 2 --require-full-offload

exit codes: 0 the model loads on the target (and the gates given pass) · 1 a pre-flight problem
would keep it from loading, or a gate failed · 2 bad input
"""


DESCRIPTION = ("Map a model's operators onto a target's units: placement, partitions, hand-off costs, the nodes "
               "that cause splits with a suggestion each, and pre-flight problems.")


def register(sub: Any) -> None:
    p = sub.add_parser("map", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="where each op runs on a target's NPU/GPU/CPU, the splits and a pre-flight")
    p.add_argument("model", nargs="?", help="an ONNX or .tflite file, or a PyTorch source (zoo:NAME, net.py:factory)")
    p.add_argument("--target", "-t", metavar="NAME", help="a map target (see --list-targets)")
    p.add_argument("--list-targets", action="store_true", help="list the map targets with their units and rules")
    p.add_argument("--device-runtime", metavar="VERSION",
                   help="the device's runtime version (e.g. 1.16 for onnxruntime): opsets and ops it lacks")
    p.add_argument("--memory-budget", type=int, metavar="BYTES",
                   help="the memory the model may use on the device (weights + peak activations, or the arena)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME:D0,D1,...",
                   help="pin an ONNX input to a static shape before mapping (repeatable)")
    p.add_argument("--cross-check", action="store_true", help="compare the map with the runtime that can answer here")
    p.add_argument("--max-partitions", type=int, metavar="N", help="gate: fail (exit 1) above N partitions")
    p.add_argument("--require-full-offload", action="store_true",
                   help="gate: fail unless every node runs on the target's first unit")
    p.add_argument("--max-fallback-nodes", type=int, metavar="N", help="gate: fail above N nodes off the first unit")
    p.add_argument("--html", metavar="OUT", help="write a self-contained HTML view of the graph (nodes by unit)")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickle checkpoints (runs their code)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgeship import api
    from edgeship.core.data import parse_shapes
    from edgeship.core.errors import UsageError

    if args.list_targets:
        return _list_targets(args)
    if not args.model or not args.target:
        raise UsageError("give a model and --target NAME (edgeship map --list-targets lists the targets)")
    for flag in ("max_partitions", "max_fallback_nodes"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be 0 or more")
    hw = api.map(args.model, args.target, device_runtime=args.device_runtime, memory_budget=args.memory_budget,
                 shapes=parse_shapes(args.shape) or None, crosscheck=args.cross_check, trust_pickle=args.trust_pickle)
    failures = hw.gate_failures(args.max_partitions, args.require_full_offload, args.max_fallback_nodes)
    if args.html:
        from edgeship.core import atomic
        from edgeship.targets.hwmap.html import to_html

        atomic.write_text(atomic.check_output_path(args.html), to_html(hw))
    if args.json:
        from edgeship.cli.common import print_json

        print_json({**hw.to_dict(), "gates": {"failed": failures}})
    else:
        _print(hw, failures, args.html)
    return 1 if failures or not hw.loads else 0


def _list_targets(args: argparse.Namespace) -> int:
    from edgeship import api

    targets = api.map_targets()
    if args.json:
        from edgeship.cli.common import print_json

        print_json([t.to_dict() for t in targets])
        return 0
    for t in targets:
        units = " → ".join(f"{u.name} ({u.rules.label})" for u in t.units)
        print(f"{t.name:<22} {units}")
        print(f"{'':<22} {t.about}")
    return 0


def _print(hw: Any, failures: list[str], html: str | None) -> None:
    from edgeship.cli.common import console as console_

    console = console_()
    s = hw.summary()
    units = ", ".join(f"{u} {n}" for u, n in s["by_unit"].items())
    console.print(f"[bold]{hw.model}[/] on [bold]{hw.target}[/] ({' → '.join(hw.units)}; rules {', '.join(hw.rules)})",
                  highlight=False)
    console.print(f"nodes {s['nodes']} ({units}) · partitions {s['partitions']} · transitions {s['transitions']} · "
                  f"fallback {s['fallback_nodes']} · folded {s['folded']}", highlight=False)
    if hw.boundaries:
        console.print(f"hand-offs: {len(hw.boundaries)}, {s['handoff_bytes']:,} B, ~{s['estimated_handoff_us']:.0f} µs "
                      f"estimated ({hw.link_basis})", highlight=False)
    for split in hw.splits:
        where = f"→ {split.unit}" if split.unit else "→ nowhere"
        console.print(f"  {len(split.nodes)} × {split.op} {where}: {split.reason} — {split.suggestion}",
                      highlight=False, markup=False)
    if len(hw.partitions) > 1:
        console.print("partitions: " + " | ".join(f"#{p.index} {p.unit} ×{len(p.nodes)}" for p in hw.partitions),
                      highlight=False)
    for p in hw.problems:
        mark = "✗" if p.blocking else "!"
        console.print(f"[red]{mark}[/] {p}", highlight=False)
    if hw.crosscheck:
        c = hw.crosscheck
        console.print(f"cross-check with {c.runtime}: {c.agreed}/{c.compared} nodes agree ({c.agreement:.1%})"
                      + (f"; {c.note}" if c.note else ""), highlight=False, markup=False)
        for d in c.disagreements[:20]:
            console.print(f"  {d.node} ({d.op}): map {d.map_says}, runtime {d.runtime_says} — {d.why}",
                          highlight=False, markup=False)
        if len(c.disagreements) > 20:
            console.print(f"  ... and {len(c.disagreements) - 20} more (--json lists them all)", highlight=False)
    for f in failures:
        console.print(f"[red]gate failed:[/] {f}", highlight=False)
    verdict = "loads" if hw.loads else "does not load"
    console.print(f"pre-flight: {verdict} on {hw.target}" + (f" ({hw.device_runtime})" if hw.device_runtime else ""),
                  highlight=False)
    if html:
        console.print(f"graph view: {html}", highlight=False)
