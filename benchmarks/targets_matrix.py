"""Targets matrix: the digits CNN converted to every target and precision, each variant judged on its own
runtime against PyTorch FP32 on the held-out ``data:digits-test`` split, then timed at batch 1.

    .venv/bin/python benchmarks/targets_matrix.py            # prints a Markdown table
    .venv/bin/python benchmarks/targets_matrix.py --json out.json

Per row: converts (or why not), runs here (or why not), the gate verdict with the numbers it was judged
on (FP32 variants: parity gates; lossy variants: the model's gate, accuracy_drop <= 1 point), p50
latency at batch 1 (2 threads; each variant in its own worker process; the timings of one run are
comparable with each other, absolute numbers vary on shared machines), file size, and for TFLite
Micro the tensor arena the model needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (target, precision, needs calibration)
MATRIX = [
    ("onnxruntime", "fp32", False),
    ("openvino", "fp32", False), ("openvino", "bf16", False), ("openvino", "fp16", False),
    ("openvino", "int8", True),
    ("tflite", "fp32", False), ("tflite", "fp16", False), ("tflite", "int8-dynamic", False),
    ("tflite", "int8", True),
    ("tflite-micro", "int8", True),
    ("executorch", "fp32", False), ("executorch", "int8", True),
    ("coreml", "fp32", False), ("coreml", "fp16", False), ("coreml", "int8-weights", False),
    ("coreml", "palette4", False),
    ("tensorrt", "fp32", False), ("tensorrt", "fp16", False), ("tensorrt", "int8", True),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args()

    from edgeship.api import convert
    from edgeship.bench.harness import bench
    from edgeship.check.comparator import check
    from edgeship.core.errors import EdgeshipError
    from edgeship.export.exporter import export
    from edgeship.targets.base import get_target
    from edgeship.zoo.base import load_zoo

    source = load_zoo("digits-cnn")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgeship-targets-") as tmp:
        work = Path(tmp)
        onnx_model = export(source, work / "digits.onnx")
        for target, precision, calibrated in MATRIX:
            tgt = get_target(target)
            avail = tgt.availability()
            row: dict[str, Any] = {"target": target, "precision": precision, "runs_here": avail.runs_here,
                                   "why_not": avail.why}
            rows.append(row)
            suffix = tgt.suffix
            subject = source if "torch" in tgt.formats and "onnx" not in tgt.formats else onnx_model
            try:
                if target == "onnxruntime":
                    model = onnx_model
                else:
                    model = convert(subject, target, work / f"digits_{target}_{precision}{suffix}",
                                    precision=precision, calib="data:digits-calib" if calibrated else None)
                row["converts"] = True
                row["size_bytes"] = model.size_bytes
                if "arena_bytes" in model.facts:
                    row["arena_bytes"] = model.facts["arena_bytes"]
            except EdgeshipError as exc:
                row["converts"], row["convert_error"] = False, str(exc)
                continue
            result = check(source, [model], data="data:digits-test", runtime=target)
            cand = result.candidates[0]
            row["gate"] = cand.status
            row["gate_why"] = cand.why
            row["accuracy"] = cand.summary.get("accuracy")
            row["accuracy_drop"] = cand.summary.get("accuracy_drop")
            row["max_abs"] = cand.summary.get("max_abs")
            if cand.status == "not_run":
                continue
            timing = bench(model, data="data:digits-test", batch=1, threads=2, runtime=target)
            row["p50_ms"] = timing["latency_ms"]["p50"]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any, spec: str = "") -> str:
        return "–" if v is None else format(v, spec)

    lines = ["| target | precision | converts | runs here | gate | accuracy (drop) | max abs vs torch | p50 ms b1 "
             "| size | arena |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        converts = "yes" if r.get("converts") else f"no ({r.get('convert_error', '')[:90]})"
        runs = "yes" if r["runs_here"] else f"no ({r['why_not'][:60]})"
        gate = r.get("gate", "–")
        acc = (f"{r['accuracy']:.2f}% ({r['accuracy_drop']:+.2f})" if isinstance(r.get("accuracy"), float)
               and isinstance(r.get("accuracy_drop"), float) else "–")
        lines.append(f"| {r['target']} | {r['precision']} | {converts} | {runs} | {gate} | {acc} | "
                     f"{fmt(r.get('max_abs'), '.2e')} | {fmt(r.get('p50_ms'), '.3f')} | "
                     f"{fmt(r.get('size_bytes'), ',')} | {fmt(r.get('arena_bytes'), ',')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
