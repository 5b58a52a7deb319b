"""Compression benchmark: pruning, distillation and QAT judged by ONNX Runtime latency and accuracy,
against the baseline measured in the same run.

    .venv/bin/python benchmarks/compression.py                 # digits CNN + MiniLM
    .venv/bin/python benchmarks/compression.py --skip-minilm   # digits CNN only (about a minute)
    .venv/bin/python benchmarks/compression.py --skip-digits --quick   # MiniLM smoke test (a few steps)

For each model and variant: parameters, MACs (torch-pruning's counter, per input row), ONNX file
size, ONNX Runtime latency and accuracy, each with its ratio to the baseline.

- digits CNN (zoo:digits-cnn): accuracy on data:digits-test (450 held-out digits, labels), latency at
  batch 64; variants: 30/50/70% structured pruning + fine-tune, 50/80% unstructured sparsity +
  fine-tune, a distilled half-width student, QAT INT8/INT4 and PTQ INT8/INT4.
- MiniLM (zoo:minilm): mean/min cosine to the PyTorch FP32 teacher on data:sentences:test (each
  sentence tokenised alone), latency at batch 1 × sequence 32; variants: the 3-layer distilled
  student, 30/50/70% structured pruning (heads + MLP neurons) and 50/80% unstructured sparsity, each
  fine-tuned by distillation to the teacher's embeddings. Training data: data:docstrings (the
  library's corpus: ~120k sentences from docstrings of the installed Python code, data:sentences'
  modules and every test sentence left out), batches of 32, linear warm-up and decay.

Latency: every variant of a model runs in this one process in interleaved rounds (each variant
once per round; best per-round 20th percentile; 2 threads), so load from other processes on a shared
machine hits all variants alike; compare the ratios. Training runs on 1 thread for the digits CNN.
Results: runs/compression/results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from _timing import THREADS, interleaved_latency, log, model_call, size_of

# MiniLM recipe (chosen by measurement, see README "Compression figures"): steps of batch 32 drawn from
# data:docstrings, linear warm-up and decay, teacher embedding tables frozen.
MINILM_STEPS = 5000  # mean cosine 0.9419 at 2000 steps, 0.9523 at 5000 (README)
MINILM_LAYERS = "3"
MINILM_LR = 1e-3
PRUNE_LR = 3e-4  # the pruned models start close to the teacher: a gentler fine-tune
PRUNE_STEPS = 300
SPARSE_STEPS = 100
QUICK_STEPS = 20


# -- rows ------------------------------------------------------------------------------------------
def row(name: str, path: Path, params: int | None, macs: int | None, metrics: dict[str, Any],
        note: str = "", seconds: float | None = None) -> dict[str, Any]:
    return {"variant": name, "path": str(path), "params": params, "macs": macs, "size_bytes": size_of(path),
            "metrics": metrics, "note": note, "build_s": None if seconds is None else round(seconds, 1)}


CONTROL = "baseline FP32 (timed again)"


def timed(paths: dict[str, Path], feeds: dict[str, np.ndarray], quick: bool) -> tuple[dict[str, float], float]:
    """Interleaved latencies plus the baseline timed a second time: the ratio of the two is the noise."""
    first = next(iter(paths))
    runners = {name: model_call(path) for name, path in {**paths, CONTROL: paths[first]}.items()}
    latency = interleaved_latency(runners, feeds, rounds=4 if quick else 12, per_round_s=0.3 if quick else 0.5)
    control = latency.pop(CONTROL)
    return latency, round(control / latency[first], 3)


def add_ratios(rows: list[dict[str, Any]], latency: dict[str, float]) -> None:
    base = rows[0]
    for r in rows:
        r["latency_ms"] = round(latency[r["variant"]], 4)
        for key in ("params", "macs", "size_bytes", "latency_ms"):
            if r.get(key) is not None and base.get(key):
                r[f"{key}_ratio"] = round(r[key] / base[key], 3)


def markdown(title: str, rows: list[dict[str, Any]], metric_cols: list[str], batch_note: str) -> str:
    trained = any(r.get("train_s") is not None for r in rows)
    head = ["variant", "params (×)", "MACs (×)", "size KB (×)", f"ORT ms {batch_note} (×)", *metric_cols,
            *(["train s"] if trained else []), "note"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        v, ratio = r.get(key), r.get(f"{key}_ratio")
        if v is None:
            return "–"
        return f"{fmt.format(v)} ({ratio:.2f})" if ratio is not None else fmt.format(v)

    for r in rows:
        mets = []
        for c in metric_cols:
            v = r["metrics"].get(c)
            mets.append("–" if v is None else (f"{v:.2f}" if c == "accuracy" else f"{v:.4f}"))
        lines.append("| " + " | ".join([r["variant"], cell(r, "params", "{:,}"), cell(r, "macs", "{:,}"),
                                        f"{r['size_bytes'] / 1024:.1f} ({r.get('size_bytes_ratio', 1):.2f})",
                                        cell(r, "latency_ms", "{:.3f}"), *mets,
                                        *([_seconds(r.get("train_s"))] if trained else []), r["note"]]) + " |")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


# -- digits ----------------------------------------------------------------------------------------
def digits(work: Path, epochs: int, quick: bool) -> dict[str, Any]:
    import torch

    from edgeship.compress import common
    from edgeship.compress.distill.config import DistillConfig
    from edgeship.compress.distill.step import distill
    from edgeship.compress.evaluate import evaluate_onnx
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.prune.step import prune
    from edgeship.compress.qat.config import QatConfig
    from edgeship.compress.qat.ptq import build_ptq
    from edgeship.compress.qat.step import qat
    from edgeship.compress.train_settings import DistillTraining, PruneTraining, QatTraining
    from edgeship.compress.training_data import load_training_data
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export
    from edgeship.zoo.base import load_zoo

    torch.set_num_threads(1)
    src = load_zoo("digits-cnn")
    test = load_data("data:digits-test", src.io)
    train_ds = load_training_data("data:digits-train", src)
    base_params = common.count_params(src.module)
    base_macs = common.count_macs(src.module, src.example_inputs)
    rows: list[dict[str, Any]] = []
    paths: dict[str, Path] = {}

    def add(name: str, path: Path, params: int | None, macs: int | None, note: str, t0: float) -> None:
        metrics = evaluate_onnx(path, src, test)
        rows.append(row(name, path, params, macs, metrics, note, time.perf_counter() - t0))
        paths[name] = path
        log(f"digits {name}: accuracy {metrics.get('accuracy', 0):.2f}%, {size_of(path)} bytes")

    t0 = time.perf_counter()
    export(src, work / "digits-fp32.onnx")
    add("baseline FP32", work / "digits-fp32.onnx", base_params, base_macs, "zoo:digits-cnn", t0)
    for ratio in (0.3, 0.5, 0.7):
        t0 = time.perf_counter()
        r = prune(src, PruneConfig(ratio=ratio, train=PruneTraining(epochs=epochs, lr=1e-3)), data=train_ds,
                  out=work / f"digits-prune{int(ratio * 100)}.onnx", quiet=True, fresh=True)
        add(f"structured {int(ratio * 100)}% + {epochs} ep", r.model.path, r.report["params"]["after"],
            r.report["macs"]["after"], "channels removed", t0)
    for ratio in (0.5, 0.8):
        t0 = time.perf_counter()
        cfg = PruneConfig(ratio=ratio, mode="unstructured", train=PruneTraining(epochs=epochs, lr=1e-3))
        r = prune(src, cfg, data=train_ds, out=work / f"digits-sparse{int(ratio * 100)}.onnx", quiet=True, fresh=True)
        add(f"unstructured {int(ratio * 100)}% + {epochs} ep", r.model.path, r.report["params"]["after"],
            r.report["macs"]["after"], f"sparsity {r.report['sparsity']['sparsity']:.2f}, dense shapes", t0)
    t0 = time.perf_counter()
    r = distill(src, DistillConfig(student="width=0.5", train=DistillTraining(epochs=epochs, lr=2e-3)), data=train_ds,
                out=work / "digits-student-w50.onnx", quiet=True, fresh=True)
    add(f"distilled width=0.5 ({epochs} ep)", r.model.path, r.report["params"]["student"],
        r.report["macs"]["student"], "KD T=4 + labels", t0)
    qat_epochs = max(1, epochs // 2)
    for bits in (8, 4):
        t0 = time.perf_counter()
        cfg = QatConfig(bits=bits, compare_ptq=False,
                        train=QatTraining(epochs=qat_epochs, lr=3e-4 if bits == 4 else 1e-4))
        r = qat(src, cfg, data=train_ds, out=work / f"digits-qat{bits}.onnx", eval_data=test, quiet=True, fresh=True)
        add(f"QAT INT{bits} ({qat_epochs} ep)", r.model.path, base_params, base_macs, f"int{bits} weights", t0)
        t0 = time.perf_counter()
        ptq_path = work / f"digits-ptq{bits}.onnx"
        build_ptq(src, bits, ptq_path, train_ds.head(128), work)
        add(f"PTQ INT{bits}", ptq_path, base_params, base_macs, "static QDQ, MinMax, 128 rows" if bits == 8
            else "round-to-nearest int4", t0)
    feeds = {src.io.input_names[0]: np.concatenate([s["input"] for s in test.samples[:64]])}
    log("digits: timing at batch 64, interleaved")
    latency, noise = timed(paths, feeds, quick)
    add_ratios(rows, latency)
    return {"model": "zoo:digits-cnn", "eval": "data:digits-test", "batch": 64, "rows": rows,
            "control_ratio": noise}


# -- MiniLM ----------------------------------------------------------------------------------------
def minilm(work: Path, steps: int, prune_steps: int, sparse_steps: int, quick: bool, lr: float,
           layers: str) -> dict[str, Any]:
    import torch

    from edgeship.compress import common
    from edgeship.compress.distill.config import DistillConfig
    from edgeship.compress.distill.step import distill
    from edgeship.compress.evaluate import evaluate_onnx
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.prune.step import prune
    from edgeship.compress.train_settings import DistillTraining, PruneTraining
    from edgeship.compress.training_data import load_training_data
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export
    from edgeship.zoo.base import load_zoo

    torch.set_num_threads(THREADS)
    src = load_zoo("minilm")
    test = load_data("data:sentences:test", src.io)
    t0 = time.perf_counter()
    corpus = load_training_data("data:docstrings", src)  # the library's corpus, tokenised once
    log(f"minilm: data:docstrings, {corpus.rows} training sentences ({time.perf_counter() - t0:.0f} s)")
    base_params = common.count_params(src.module)
    base_macs = common.count_macs(src.module, src.example_inputs)
    rows: list[dict[str, Any]] = []
    paths: dict[str, Path] = {}

    def add(name: str, path: Path, params: int | None, macs: int | None, note: str, t0: float,
            train_s: float | None = None) -> None:
        metrics = evaluate_onnx(path, src, test)
        rows.append({**row(name, path, params, macs, metrics, note, time.perf_counter() - t0),
                     "train_s": None if train_s is None else round(train_s, 1)})
        paths[name] = path
        log(f"minilm {name}: cosine mean {metrics['cosine_mean']:.4f} min {metrics['cosine_min']:.4f}"
            + (f", trained {train_s:.0f} s" if train_s is not None else ""))

    def fine_tune(ratio: float, mode: str, n_steps: int) -> tuple[PruneConfig, Any]:
        # The fine-tune is distillation: the pruned model learns the unpruned model's embeddings.
        cfg = PruneConfig(ratio=ratio, mode=mode, train=PruneTraining(
            epochs=1 if n_steps else 0, max_steps=n_steps or None, lr=PRUNE_LR, schedule="linear", warmup=0.06))
        return cfg, corpus if n_steps else None

    t0 = time.perf_counter()
    export(src, work / "minilm-fp32.onnx")
    add("baseline FP32", work / "minilm-fp32.onnx", base_params, base_macs, "zoo:minilm (6 layers)", t0)
    t0 = time.perf_counter()
    r = distill(src, DistillConfig(student=f"layers={layers}", train=DistillTraining(epochs=1, max_steps=steps, lr=lr)),
                data=corpus, out=work / "minilm-student-l3.onnx", quiet=True, fresh=True)
    add(f"distilled layers={layers} ({steps} steps)", r.model.path, r.report["params"]["student"],
        r.report["macs"]["student"], f"teacher layers {r.report['kept_layers']} of 6", t0, r.report["train"]["seconds"])
    for ratio in (0.3, 0.5, 0.7):
        t0 = time.perf_counter()
        cfg, data = fine_tune(ratio, "structured", prune_steps)
        r = prune(src, cfg, data=data, out=work / f"minilm-prune{int(ratio * 100)}.onnx", quiet=True, fresh=True)
        add(f"structured {int(ratio * 100)}% + {prune_steps} steps", r.model.path, r.report["params"]["after"],
            r.report["macs"]["after"], "heads + MLP neurons", t0, (r.report["finetune"] or {}).get("seconds"))
    for ratio in (0.5, 0.8):
        t0 = time.perf_counter()
        cfg, data = fine_tune(ratio, "unstructured", sparse_steps)
        r = prune(src, cfg, data=data, out=work / f"minilm-sparse{int(ratio * 100)}.onnx", quiet=True, fresh=True)
        add(f"unstructured {int(ratio * 100)}% + {sparse_steps} steps", r.model.path, r.report["params"]["after"],
            r.report["macs"]["after"], f"sparsity {r.report['sparsity']['sparsity']:.2f}, dense shapes", t0,
            (r.report["finetune"] or {}).get("seconds"))
    feeds = test.batch(1, 32)
    log("minilm: timing at batch 1 × seq 32, interleaved")
    latency, noise = timed(paths, feeds, quick)
    add_ratios(rows, latency)
    return {"model": "zoo:minilm", "eval": "data:sentences:test", "train_data": "data:docstrings",
            "train_rows": corpus.rows, "batch": 1, "seq": 32, "rows": rows, "control_ratio": noise,
            "not_run": {"QAT/PTQ INT8/INT4": "not run for MiniLM in this benchmark: on this CPU INT4 is not faster "
                        "(ENVIRONMENT.md) and static INT8 of every op fails the cosine gate; see "
                        "benchmarks/quantization.py for MiniLM PTQ, and the digits rows for QAT vs PTQ"}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/compression", help="work folder (default runs/compression)")
    p.add_argument("--digits-epochs", type=int, default=10, help="fine-tune/distill epochs for the digits CNN")
    p.add_argument("--minilm-steps", type=int, default=None,
                   help=f"distillation steps for the MiniLM student (default {MINILM_STEPS}; --quick {QUICK_STEPS})")
    p.add_argument("--minilm-layers", default=MINILM_LAYERS, help=f"student layers (default {MINILM_LAYERS})")
    p.add_argument("--minilm-lr", type=float, default=MINILM_LR,
                   help=f"peak distillation learning rate (default {MINILM_LR:g}; pruning fine-tunes use {PRUNE_LR:g})")
    p.add_argument("--minilm-prune-steps", type=int, default=None,
                   help=f"distillation fine-tune steps after structured pruning (default {PRUNE_STEPS}; "
                        f"--quick {QUICK_STEPS})")
    p.add_argument("--minilm-sparse-steps", type=int, default=None,
                   help=f"fine-tune steps after unstructured pruning (default {SPARSE_STEPS}; --quick {QUICK_STEPS})")
    p.add_argument("--skip-minilm", action="store_true")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke test: few training steps, fewer timing rounds")
    args = p.parse_args(argv)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"threads": THREADS, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tables = []
    if not args.skip_digits:
        results["digits"] = digits(work, args.digits_epochs, args.quick)
        tables.append(markdown("digits CNN — accuracy on data:digits-test (450)", results["digits"]["rows"],
                               ["accuracy", "top1_agreement"], "b64")
                      + f"\n\nbaseline timed twice: second/first = {results['digits']['control_ratio']}")
    if not args.skip_minilm:
        def steps(given: int | None, default: int) -> int:
            return given if given is not None else (min(default, QUICK_STEPS) if args.quick else default)

        results["minilm"] = minilm(work, steps(args.minilm_steps, MINILM_STEPS),
                                   steps(args.minilm_prune_steps, PRUNE_STEPS),
                                   steps(args.minilm_sparse_steps, SPARSE_STEPS), args.quick, args.minilm_lr,
                                   args.minilm_layers)
        tables.append(markdown("MiniLM — cosine to PyTorch FP32 on data:sentences:test", results["minilm"]["rows"],
                               ["cosine_mean", "cosine_min"], "b1×s32")
                      + f"\n\nbaseline timed twice: second/first = {results['minilm']['control_ratio']}")
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n\n".join(tables))
    from edgeship.bench.sysinfo import system_info

    print(f"\nmachine: {json.dumps(system_info())[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
