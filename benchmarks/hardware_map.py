"""The hardware map of every zoo model on every accelerator: partitions and fallback ops, the
table README.md shows. Each model is exported once and mapped with static input shapes (batch 1,
sequence 32 — what a device build uses); ``--dynamic`` maps the export as it is instead.

    python benchmarks/hardware_map.py                 # the README table (Markdown)
    python benchmarks/hardware_map.py --cross-check   # and the agreement with the runtimes here
    python benchmarks/hardware_map.py --json out.json

The figures are the rules' prediction (edgeship/targets/hwmap/rules/*.yaml, each rule citing its
document); ``--cross-check`` adds, where a runtime here can answer, how many nodes it agrees on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeship.targets.hwmap.result import HardwareMap

# The accelerators of the hardware-map issue, in its order (Core ML and OpenVINO per unit).
TARGETS = ("tflite-gpu", "nnapi", "qnn-htp", "edgetpu", "coreml-ane", "coreml-gpu", "tensorrt", "openvino-cpu",
           "openvino-gpu", "openvino-npu", "xnnpack", "tflite-micro", "onnxruntime")
STATIC = {"digits-cnn": {"input": (1, 1, 8, 8)}, "efficientnet-lite0": {"input": (1, 3, 224, 224)},
          "minilm": {"input_ids": (1, 32), "attention_mask": (1, 32), "token_type_ids": (1, 32)}}


def cell(hw: HardwareMap) -> str:
    s = hw.summary()
    if not hw.loads:
        blockers = sorted({x.op.split(":")[-1] for x in hw.splits if x.unit is None})
        why = ", ".join(blockers) or "; ".join(p.kind for p in hw.problems if p.blocking)
        return f"does not load ({why})"
    ops = sorted({x.op.split(":")[-1] for x in hw.splits if x.unit is not None})
    fallback = f"{s['fallback_nodes']} fallback: {', '.join(ops)}" if ops else "0 fallback"
    return f"{s['partitions']} partition{'s' if s['partitions'] != 1 else ''}, {fallback}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cross-check", action="store_true", help="also ask the runtimes that can answer here")
    ap.add_argument("--dynamic", action="store_true", help="map the exports as they are (dynamic batch/sequence)")
    ap.add_argument("--json", metavar="OUT", help="write every map (summaries, splits, cross-checks) as JSON")
    args = ap.parse_args(argv)

    from edgeship import api
    from edgeship.export.config import ExportConfig
    from edgeship.sources.resolve import resolve

    rows: dict[str, dict[str, str]] = {t: {} for t in TARGETS}
    agreement: dict[str, dict[str, str]] = {}
    disagreements: list[str] = []
    dump = []
    with tempfile.TemporaryDirectory(prefix="edgeship-hwmap-") as tmp:
        for name, shapes in STATIC.items():
            source = resolve(f"zoo:{name}")
            onnx = api.export(source, Path(tmp) / f"{name}.onnx", ExportConfig(parity=False))
            for target in TARGETS:
                # the ExecuTorch cross-check lowers the PyTorch source, so it maps the zoo spec
                spec = f"zoo:{name}" if args.cross_check and target == "xnnpack" else onnx
                hw = api.map(spec, target, shapes=None if args.dynamic else shapes, crosscheck=args.cross_check)
                rows[target][name] = cell(hw)
                if hw.crosscheck:
                    c = hw.crosscheck
                    agreement.setdefault(target, {})[name] = f"{c.agreed}/{c.compared} ({c.agreement:.1%})"
                    disagreements += [f"- `{target}` on zoo:{name}: {d.node} ({d.op}): the map says {d.map_says}, "
                                      f"{c.runtime} says {d.runtime_says}: {d.why}" for d in c.disagreements]
                dump.append({"model": name, **hw.to_dict()})
                print(f"{name} on {target}: {rows[target][name]}", file=sys.stderr)
    models = list(STATIC)
    print("| target | " + " | ".join(f"zoo:{m}" for m in models) + " |")
    print("|---|" + "---|" * len(models))
    for target in TARGETS:
        print(f"| `{target}` | " + " | ".join(rows[target][m] for m in models) + " |")
    if agreement:
        print("\n| cross-check | " + " | ".join(f"zoo:{m}" for m in models) + " |")
        print("|---|" + "---|" * len(models))
        for target, by_model in agreement.items():
            print(f"| `{target}` | " + " | ".join(by_model.get(m, "–") for m in models) + " |")
        print("\nDisagreements (each with the runtime's answer and why):" if disagreements else
              "\nDisagreements: none (the map and every runtime that answered agree on every node compared)")
        for line in disagreements:
            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
