"""Quantization benchmark: every edgeship method against ONNX Runtime FP32, PyTorch eager FP32 and
Hugging Face Optimum's ORTQuantizer (avx512_vnni dynamic preset, per-channel), all in one run.

    .venv/bin/python benchmarks/quantization.py            # MiniLM b1/b8 × seq 32/128 and the digits CNN
    .venv/bin/python benchmarks/quantization.py --quick    # MiniLM batch 1 × seq 32 only, a shorter search

MiniLM accuracy is measured against PyTorch eager FP32 on the held-out ``data:sentences:test``
(each sentence tokenised alone at its natural length; never the calibration sentences), with the
gate mean cosine >= 0.995 and min cosine >= 0.98. Latencies are measured in this one process in
interleaved rounds (every variant once per round; best per-round 20th percentile; 2 threads), so
load from other processes on a shared machine affects all variants alike; ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

THREADS = 2
MINILM_GATES = ("cosine_mean>=0.995", "cosine_min>=0.98")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- timing ------------------------------------------------------------------------------------------------
def ort_runner(path: Path) -> Callable[[dict[str, np.ndarray]], Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    return lambda feeds: sess.run(None, {k: v for k, v in feeds.items() if k in wanted})


def interleaved_latency(runners: dict[str, Callable[[dict[str, np.ndarray]], Any]], feeds: dict[str, np.ndarray],
                        rounds: int, per_round_s: float) -> dict[str, float]:
    """Latency (ms) of each runner: the best over rounds of the per-round 20th percentile. Under load
    from other processes the uncontended runs are the ones that measure the model; interleaving
    makes every variant see the same conditions."""
    for run in runners.values():
        for _ in range(3):
            run(feeds)
    best = {name: float("inf") for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            times: list[float] = []
            t_end = time.perf_counter() + per_round_s
            while len(times) < 5 or time.perf_counter() < t_end:
                t0 = time.perf_counter()
                run(feeds)
                times.append(time.perf_counter() - t0)
            best[name] = min(best[name], float(np.percentile(times, 20)) * 1e3)
    return best


def size_of(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


# -- variants ----------------------------------------------------------------------------------------------
def minilm_variants(src: Path, work: Path, quick: bool) -> dict[str, Path]:
    from edgeship.compress.quantize import (
        Fp16Config,
        Int4WeightConfig,
        Int8DynamicConfig,
        Int8StaticConfig,
        MixedConfig,
        quantize,
    )

    calib = "data:sentences:calib"
    mixed = MixedConfig(gates=MINILM_GATES, time_budget_s=240 if quick else 600,
                        candidates=(Int8DynamicConfig(smooth_alpha=0.7), Int8DynamicConfig()) if quick
                        else MixedConfig().candidates)
    configs: dict[str, Any] = {
        "fp16": Fp16Config(),
        "int8-dynamic": Int8DynamicConfig(),
        "int8-dynamic+smooth0.7": Int8DynamicConfig(smooth_alpha=0.7),
        "int8-static": Int8StaticConfig(),
        "int4-weight": Int4WeightConfig(),
        "mixed": mixed,
    }
    out: dict[str, Path] = {}
    for name, cfg in configs.items():
        path = work / f"minilm.{name}.onnx"
        t0 = time.perf_counter()
        log(f"quantizing MiniLM: {name}")
        model = quantize(src, cfg, out=path, calib=calib if cfg.needs_calibration else None)
        out[name] = path
        if name == "mixed":
            f = model.facts
            log(f"  mixed chose {f['base_label']} with {len(f['nodes_kept_fp32'])} FP32 node(s) "
                f"in {time.perf_counter() - t0:.0f} s; selection gate: {f['gate']['why']}")
    opt = optimum_avx512_vnni(src, work)
    if opt is not None:
        out["optimum-avx512_vnni"] = opt
    return out


def optimum_avx512_vnni(src: Path, work: Path) -> Path | None:
    """Optimum's ORTQuantizer with AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)."""
    try:
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except ImportError as exc:
        log(f"Optimum not installed ({exc}); install edgeship[bench] to compare with it")
        return None
    folder = work / "optimum"
    folder.mkdir(exist_ok=True)
    log("quantizing MiniLM with Optimum ORTQuantizer avx512_vnni (dynamic, per-channel)")
    import logging

    logging.getLogger("optimum").setLevel(logging.ERROR)  # it warns that the folder has no config.json
    quantizer = ORTQuantizer.from_pretrained(src.parent, file_name=src.name)
    qconfig = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    return Path(quantizer.quantize(save_dir=folder, quantization_config=qconfig)) / f"{src.stem}_quantized.onnx"


def accuracy(ref: list[np.ndarray], path: Path, samples: list[dict[str, np.ndarray]],
             labels: np.ndarray | None = None) -> dict[str, Any]:
    from edgeship.check.metrics import output_metrics

    run = ort_runner(path)
    cand = [run(s)[0] for s in samples]
    return output_metrics(ref, cand, labels=labels)


# -- MiniLM ------------------------------------------------------------------------------------------------
def bench_minilm(work: Path, quick: bool, rounds: int) -> dict[str, Any]:
    import torch

    from edgeship.check.gates import evaluate_gates, parse_gates
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export
    from edgeship.zoo.base import load_zoo

    torch.set_num_threads(THREADS)
    source = load_zoo("zoo:minilm")
    src = work / "minilm.onnx"
    if not src.exists():
        log("exporting zoo:minilm to ONNX")
        export(source, src)
    model = Model.open(src)
    test = load_data("data:sentences:test", model.io)
    log(f"reference: PyTorch eager FP32 on {len(test)} held-out sentences")
    ref = [source.forward_numpy(s)["sentence_embedding"] for s in test.samples]
    variants = {"ort-fp32": src, **minilm_variants(src, work, quick)}
    gates = parse_gates(MINILM_GATES)
    rows: dict[str, dict[str, Any]] = {"pytorch-eager-fp32": {"size_bytes": None, "cosine_mean": 1.0,
                                                              "cosine_min": 1.0, "gate": True}}
    for name, path in variants.items():
        m = accuracy(ref, path, test.samples)
        passed, why = evaluate_gates(gates, m)
        rows[name] = {"size_bytes": size_of(path), "cosine_mean": m["cosine_mean"], "cosine_min": m["cosine_min"],
                      "gate": passed, "why": why}
    shapes = [(1, 32)] if quick else [(1, 32), (1, 128), (8, 32), (8, 128)]
    for batch, seq in shapes:
        feeds = test.batch(batch, seq)
        log(f"timing batch {batch} × seq {seq} ({rounds} interleaved rounds)")
        runners = {name: ort_runner(path) for name, path in variants.items()}

        def eager(f: dict[str, np.ndarray]) -> Any:
            return source.forward_numpy(f)

        runners["pytorch-eager-fp32"] = eager
        lat = interleaved_latency(runners, feeds, rounds, per_round_s=0.3 if batch == 1 else 0.6)
        for name, ms in lat.items():
            rows[name][f"ms_b{batch}_s{seq}"] = ms
    return {"rows": rows, "fp32_size": size_of(src), "shapes": shapes, "test_samples": len(test)}


# -- digits CNN --------------------------------------------------------------------------------------------
def bench_digits(work: Path, rounds: int) -> dict[str, Any]:
    from edgeship.compress.quantize import Fp16Config, Int8DynamicConfig, Int8StaticConfig, MixedConfig, quantize
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export

    src = work / "digits.onnx"
    if not src.exists():
        log("exporting zoo:digits-cnn to ONNX")
        export("zoo:digits-cnn", src)
    model = Model.open(src)
    test = load_data("data:digits-test", model.io)
    configs = {
        "fp16": Fp16Config(),
        "int8-static": Int8StaticConfig(),
        "int8-static-entropy": Int8StaticConfig(calibration="entropy"),
        "int8-dynamic": Int8DynamicConfig(),
        "mixed": MixedConfig(gates=("top1_agreement>=0.99",), time_budget_s=120),
    }
    variants = {"ort-fp32": src}
    for name, cfg in configs.items():
        log(f"quantizing digits CNN: {name}")
        path = work / f"digits.{name}.onnx"
        quantize(src, cfg, out=path, calib="data:digits-calib" if cfg.needs_calibration else None)
        variants[name] = path
    fp32_run = ort_runner(src)
    ref = [fp32_run(s)[0] for s in test.samples]
    rows: dict[str, dict[str, Any]] = {}
    for name, path in variants.items():
        m = accuracy(ref, path, test.samples, labels=test.labels)
        rows[name] = {"size_bytes": size_of(path), "accuracy": m.get("accuracy"),
                      "accuracy_drop": m.get("accuracy_drop"), "top1_agreement": m.get("top1_agreement")}
    for batch in (1, 64):
        feeds = test.batch(batch)
        lat = interleaved_latency({n: ort_runner(p) for n, p in variants.items()}, feeds, rounds, per_round_s=0.2)
        for name, ms in lat.items():
            rows[name][f"ms_b{batch}"] = ms
    return {"rows": rows, "test_samples": len(test)}


# -- report ------------------------------------------------------------------------------------------------
def print_minilm(res: dict[str, Any]) -> dict[str, Any]:
    rows, fp32 = res["rows"], res["rows"]["ort-fp32"]
    eager = res["rows"]["pytorch-eager-fp32"]
    cols = [f"ms_b{b}_s{s}" for b, s in res["shapes"]]
    print(f"\nMiniLM (all-MiniLM-L6-v2), {res['test_samples']} held-out sentences, gate "
          f"{' and '.join(MINILM_GATES)} vs PyTorch FP32; latency ms (× ORT FP32 / × PyTorch eager), {THREADS} threads")
    head = f"{'variant':26s} {'size':>7s} {'cos mean':>9s} {'cos min':>8s} {'gate':>5s} " + " ".join(
        f"{c[3:]:>22s}" for c in cols)
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / res['fp32_size']:.0%}"
        cells = " ".join(f"{r[c]:7.2f} ({fp32[c] / r[c]:4.2f}×/{eager[c] / r[c]:5.2f}×)" for c in cols)
        print(f"{name:26s} {size:>7s} {r['cosine_mean']:9.5f} {r['cosine_min']:8.5f} "
              f"{'pass' if r['gate'] else 'FAIL':>5s} {cells}")
    key = "ms_b1_s32"
    passing = {n: r for n, r in rows.items() if r["gate"] and n not in ("pytorch-eager-fp32", "ort-fp32")
               and not n.startswith("optimum")}
    summary: dict[str, Any] = {}
    if passing:
        best_name = min(passing, key=lambda n: passing[n][key])
        best = passing[best_name]
        summary = {"best": best_name, "x_ort_fp32": fp32[key] / best[key], "x_eager": eager[key] / best[key],
                   "size_pct": best["size_bytes"] / res["fp32_size"] * 100}
        print(f"\nbest passing variant at batch 1, seq 32: {best_name}: {summary['x_ort_fp32']:.2f}× ORT FP32 "
              f"(target ≥ 2.0), {summary['x_eager']:.2f}× PyTorch eager (target ≥ 5), "
              f"{summary['size_pct']:.1f}% of the FP32 size (target ≤ 30%)")
        opt = rows.get("optimum-avx512_vnni")
        if opt is not None:
            summary["vs_optimum"] = {"cos_min": (best["cosine_min"], opt["cosine_min"]),
                                     "ms": (best[key], opt[key])}
            print(f"vs Optimum avx512_vnni preset: worst-case cosine {best['cosine_min']:.4f} vs "
                  f"{opt['cosine_min']:.4f}, latency {best[key]:.2f} vs {opt[key]:.2f} ms "
                  f"({opt[key] / best[key]:.2f}× Optimum's speed)")
    else:
        print("\nno quantized variant passed the gate")
    return summary


def print_digits(res: dict[str, Any]) -> dict[str, Any]:
    rows, fp32 = res["rows"], res["rows"]["ort-fp32"]
    print(f"\ndigits CNN, {res['test_samples']} held-out digits; latency ms (× ORT FP32)")
    head = f"{'variant':22s} {'size':>7s} {'top-1 %':>8s} {'drop pts':>9s} {'agree':>7s} {'b1':>15s} {'b64':>15s}"
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(f"{name:22s} {r['size_bytes'] / fp32['size_bytes']:7.0%} {r['accuracy']:8.2f} {r['accuracy_drop']:9.2f} "
              f"{r['top1_agreement']:7.3f} {r['ms_b1']:7.3f} ({fp32['ms_b1'] / r['ms_b1']:4.2f}×) "
              f"{r['ms_b64']:7.3f} ({fp32['ms_b64'] / r['ms_b64']:4.2f}×)")
    drop = rows["int8-static"]["accuracy_drop"]
    print(f"\ndigits INT8 static: top-1 {rows['int8-static']['accuracy']:.2f}% vs FP32 {fp32['accuracy']:.2f}% "
          f"(drop {drop:.2f} points; target ≤ 0.3)")
    return {"int8_static_drop": drop}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="MiniLM at batch 1 × seq 32 only, shorter mixed search")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "edgeship-bench-quant"),
                    help="folder for the exported and quantized models (the exports are reused)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 7, quick 5)")
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or (5 if args.quick else 7)
    t0 = time.perf_counter()
    minilm = bench_minilm(work, args.quick, rounds)
    summary = {"minilm": print_minilm(minilm)}
    digits = None
    if not args.skip_digits:
        digits = bench_digits(work, rounds)
        summary["digits"] = print_digits(digits)
    print(f"\n(total {time.perf_counter() - t0:.0f} s; models in {work})")
    if args.json:
        Path(args.json).write_text(json.dumps({"minilm": minilm, "digits": digits, "summary": summary}, indent=1,
                                              default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
