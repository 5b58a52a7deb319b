"""PyTorch eager FP32 against ONNX Runtime FP32 for the zoo models, measured in the same run.

    .venv/bin/python benchmarks/export_parity.py [--models digits-cnn,efficientnet-lite0,minilm] [--min-time 3]

For each model: export to ONNX, check parity on its held-out data, then time PyTorch eager and
ONNX Runtime at batch 1 (MiniLM at sequence 32), each in a fresh process with the same thread
count, and print the ratio. Nothing here is a constant: every figure comes from this run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("USE_TF", "0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="digits-cnn,efficientnet-lite0,minilm")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timed repetitions per model")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    from edgeship.bench.harness import bench
    from edgeship.bench.sysinfo import system_info
    from edgeship.check.comparator import check
    from edgeship.export.exporter import export
    from edgeship.zoo.base import load_zoo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            source = load_zoo(name)
            onnx_path = Path(tmp) / f"{name}.onnx"
            export(source, onnx_path)
            parity = check(source, [str(onnx_path)], data=source.eval_data).candidates[0]
            seq = 32 if name == "minilm" else None
            t_pt = bench(f"zoo:{name}", data=source.eval_data, seq=seq, threads=args.threads, min_time_s=args.min_time)
            t_ort = bench(str(onnx_path), data=source.eval_data, seq=seq, threads=args.threads,
                          min_time_s=args.min_time)
            rows.append((name, parity, t_pt, t_ort))

    s = system_info()
    print(f"\n{s['cpu']} · {s['usable_cores']} cores · threads {rows[0][2]['threads']} · batch 1 (MiniLM seq 32)")
    print(f"{'model':<20}{'PyTorch p50 ms':>16}{'ORT p50 ms':>12}{'ORT speed-up':>14}  parity on held-out data")
    for name, parity, t_pt, t_ort in rows:
        p50_pt, p50_ort = t_pt["latency_ms"]["p50"], t_ort["latency_ms"]["p50"]
        m = parity.summary
        fid = f"cos min {m['cosine_min']:.7f}" + (f", top-1 {m['top1_agreement']:.2%}" if "top1_agreement" in m else "")
        print(f"{name:<20}{p50_pt:>16.3f}{p50_ort:>12.3f}{p50_pt / p50_ort:>13.2f}×  {fid} ({parity.status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
