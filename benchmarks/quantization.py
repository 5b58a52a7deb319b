"""Quantization benchmark: every edgeship method against ONNX Runtime FP32, PyTorch eager FP32 and
Hugging Face Optimum's ORTQuantizer (avx512_vnni dynamic preset, per-channel), all in one run.

    .venv/bin/python benchmarks/quantization.py            # MiniLM b1/b8 × seq 32/128 and the digits CNN
    .venv/bin/python benchmarks/quantization.py --quick    # MiniLM batch 1 × seq 32 only, a shorter search

MiniLM accuracy is measured against PyTorch eager FP32 on the held-out ``data:sentences:test``
(each sentence tokenised alone at its natural length; never the calibration sentences), with the
gate mean cosine >= 0.995 and min cosine >= 0.98. Latencies are measured in this one process in
interleaved rounds (every variant once per round; best per-round 20th percentile; 2 threads), so
load from other processes on a shared machine affects all variants alike; ratios are what to compare.

Baselines: ``ort-fp32`` is the exported FP32 model as ONNX Runtime runs it (its own graph
optimisations on); ``ort-fp32-fused`` is the same graph after the transformer fusion our INT8
variants start from, to show what fusion alone gives. PyTorch eager runs twice, with Hugging Face's
"eager" attention (the zoo module) and with "sdpa"; the "× eager" ratios use the faster of the two.
Run it on a quiet machine: PyTorch's OpenMP threads slow down many times over when other processes
compete for the cores, which inflates every ratio to eager (the script warns when the load is high).
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

from _timing import THREADS, interleaved_latency, log, model_call, size_of

MINILM_GATES = ("cosine_mean>=0.995", "cosine_min>=0.98")
Feeds = dict[str, np.ndarray]


# -- variants ----------------------------------------------------------------------------------------------
def minilm_variants(src: Path, work: Path, quick: bool) -> dict[str, Path]:
    from edgeship.compress.quantize.api import quantize
    from edgeship.compress.quantize.configs import (
        Fp16Config,
        Int4WeightConfig,
        Int8DynamicConfig,
        Int8StaticConfig,
        MixedConfig,
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


def openvino_variants(src: Path, work: Path, calib: str) -> dict[str, Path]:
    """MiniLM converted by edgeship's OpenVINO target: FP32 IR and NNCF INT8 (transformer scheme,
    with and without SmoothQuant), the same as ``edgeship convert --target openvino [--precision int8]``."""
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.core.errors import MissingDependency
    from edgeship.targets.base import get_target

    target = get_target("openvino")
    model = Model.open(src)
    # INT8 with the target's defaults (auto: NNCF's transformer scheme with SmoothQuant for this
    # graph), and without SmoothQuant to show what it buys
    options = {"openvino-fp32": {"precision": "fp32"},
               "openvino-int8": {"precision": "int8"},
               "openvino-int8-no-smoothquant": {"precision": "int8", "smooth_quant": False}}
    out: dict[str, Path] = {}
    try:
        data = load_data(calib, model.io)
        for name, opts in options.items():
            log(f"converting MiniLM for OpenVINO: {name}")
            out[name] = target.convert(model, work / f"minilm.{name}.xml", calib=data, **opts).path
    except MissingDependency as exc:
        log(f"OpenVINO rows skipped: {exc}")
    return out


def fused_fp32(src: Path, work: Path) -> Path | None:
    """The FP32 graph after the transformer fusion that the INT8 variants start from."""
    from edgeship.compress.quantize import graph

    dst = work / "minilm.fp32-fused.onnx"
    info = graph.optimize_transformer(src, dst, None)
    if not info.get("fused"):
        log(f"transformer fusion did not apply: {info.get('why')}")
        return None
    return dst


def sdpa_eager(source: Any) -> Callable[[Feeds], Feeds]:
    """The zoo's MiniLM module with PyTorch's fused scaled-dot-product attention instead of
    Hugging Face's "eager" attention (same weights), run eagerly."""
    import transformers

    from edgeship.compress.common import clone_source
    from edgeship.zoo.nets import SentenceEmbedder

    encoder = transformers.AutoModel.from_pretrained(source.extra["model_path"], local_files_only=True,
                                                     attn_implementation="sdpa")
    return clone_source(source, SentenceEmbedder(encoder), "+sdpa").forward_numpy


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


def judged(ref: list[Feeds], run: Callable[[Feeds], Feeds], samples: list[Feeds], gates: tuple[str, ...] = (),
           task: str = "other", labels: np.ndarray | None = None) -> Any:
    """``run``'s outputs on ``samples`` against ``ref`` by edgeship's comparison engine (a CandidateResult)."""
    from edgeship.check.judge import judge

    return judge(ref, [run(s) for s in samples], list(gates), task=task, labels=labels)


# -- MiniLM ------------------------------------------------------------------------------------------------
def bench_minilm(work: Path, quick: bool, rounds: int) -> dict[str, Any]:
    import torch

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
    torch.set_num_threads(1)  # numbers do not depend on it, and one thread never stalls on a busy machine
    ref = [source.forward_numpy(s) for s in test.samples]
    sdpa = sdpa_eager(source)
    sdpa_m = judged(ref, sdpa, test.samples, task="embedding").summary
    torch.set_num_threads(THREADS)
    variants = {"ort-fp32": src}
    fused = fused_fp32(src, work)
    if fused is not None:
        variants["ort-fp32-fused"] = fused
    variants.update(minilm_variants(src, work, quick))
    variants.update(openvino_variants(src, work, "data:sentences:calib"))
    rows: dict[str, dict[str, Any]] = {
        "pytorch-eager-fp32": {"size_bytes": None, "cosine_mean": 1.0, "cosine_min": 1.0, "gate": True},
        "pytorch-eager-fp32-sdpa": {"size_bytes": None, "cosine_mean": sdpa_m["cosine_mean"],
                                    "cosine_min": sdpa_m["cosine_min"], "gate": True},
    }
    for name, path in variants.items():
        result = judged(ref, model_call(path), test.samples, MINILM_GATES, task="embedding")
        m = result.summary
        rows[name] = {"size_bytes": size_of(path), "cosine_mean": m["cosine_mean"], "cosine_min": m["cosine_min"],
                      "gate": result.passed, "why": result.why}
    shapes = [(1, 32)] if quick else [(1, 32), (1, 128), (8, 32), (8, 128)]
    loads: list[float] = []
    for batch, seq in shapes:
        feeds = test.batch(batch, seq)
        log(f"timing batch {batch} × seq {seq} ({rounds} interleaved rounds)")
        runners: dict[str, Callable[[Feeds], Any]] = {name: model_call(path) for name, path in variants.items()}
        runners["pytorch-eager-fp32"] = source.forward_numpy
        runners["pytorch-eager-fp32-sdpa"] = sdpa
        load_before = os.getloadavg()[0]
        lat = interleaved_latency(runners, feeds, rounds, per_round_s=0.3 if batch == 1 else 0.6)
        load = max(load_before, os.getloadavg()[0])
        if load > (os.cpu_count() or 1):
            log(f"WARNING: load average {load:.1f} on {os.cpu_count()} cores while timing: other processes "
                "compete for the CPU; the PyTorch eager figures (and every ratio to them) are not trustworthy")
        for name, ms in lat.items():
            rows[name][f"ms_b{batch}_s{seq}"] = ms
        loads.append(round(load, 2))
    return {"rows": rows, "fp32_size": size_of(src), "shapes": shapes, "test_samples": len(test),
            "load_average": loads}


# -- digits CNN --------------------------------------------------------------------------------------------
def bench_digits(work: Path, rounds: int) -> dict[str, Any]:
    from edgeship.compress.quantize.api import quantize
    from edgeship.compress.quantize.configs import Fp16Config, Int8DynamicConfig, Int8StaticConfig, MixedConfig
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
    fp32_run = model_call(src)
    ref = [fp32_run(s) for s in test.samples]
    rows: dict[str, dict[str, Any]] = {}
    for name, path in variants.items():
        m = judged(ref, model_call(path), test.samples, task="classification", labels=test.labels).summary
        rows[name] = {"size_bytes": size_of(path), "accuracy": m.get("accuracy"),
                      "accuracy_drop": m.get("accuracy_drop"), "top1_agreement": m.get("top1_agreement")}
    for batch in (1, 64):
        feeds = test.batch(batch)
        lat = interleaved_latency({n: model_call(p) for n, p in variants.items()}, feeds, rounds, per_round_s=0.2)
        for name, ms in lat.items():
            rows[name][f"ms_b{batch}"] = ms
    return {"rows": rows, "test_samples": len(test)}


# -- report ------------------------------------------------------------------------------------------------
def print_minilm(res: dict[str, Any]) -> dict[str, Any]:
    rows, fp32 = res["rows"], res["rows"]["ort-fp32"]
    cols = [f"ms_b{b}_s{s}" for b, s in res["shapes"]]
    # the faster PyTorch eager run (HF "eager" or "sdpa" attention) is the baseline, per shape
    eager = {c: min(rows["pytorch-eager-fp32"][c], rows["pytorch-eager-fp32-sdpa"][c]) for c in cols}
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
    passing = {n: r for n, r in rows.items() if r["gate"] and r["size_bytes"] is not None
               and not n.startswith(("ort-fp32", "optimum"))}
    summary: dict[str, Any] = {}
    if passing:
        # the best ONNX file (edgeship quantize, run by ONNX Runtime), and the best on any runtime
        # edgeship builds for this CPU (OpenVINO IR from edgeship convert included)
        for label, pool in (("onnx", {n: r for n, r in passing.items() if not n.startswith("openvino")}),
                            ("any", passing)):
            if not pool:
                continue
            name = min(pool, key=lambda n: pool[n][key])
            best = pool[name]
            summary[label] = {"best": name, "x_ort_fp32": fp32[key] / best[key], "x_eager": eager[key] / best[key],
                              "size_pct": best["size_bytes"] / res["fp32_size"] * 100}
            what = "ONNX Runtime variant" if label == "onnx" else "variant on any runtime"
            print(f"\nbest passing {what} at batch 1, seq 32: {name}: {summary[label]['x_ort_fp32']:.2f}× ORT FP32 "
                  f"(target ≥ 2.0), {summary[label]['x_eager']:.2f}× PyTorch eager (target ≥ 5), "
                  f"{summary[label]['size_pct']:.1f}% of the FP32 size (target ≤ 30%)")
        print(f"load average while timing: {res.get('load_average')}")
        opt = rows.get("optimum-avx512_vnni")
        if opt is not None and "onnx" in summary:
            best = rows[summary["onnx"]["best"]]
            summary["vs_optimum"] = {"cos_min": (best["cosine_min"], opt["cosine_min"]),
                                     "ms": (best[key], opt[key])}
            print(f"vs Optimum avx512_vnni preset (both in ONNX Runtime): worst-case cosine {best['cosine_min']:.4f} "
                  f"vs {opt['cosine_min']:.4f}, latency {best[key]:.2f} vs {opt[key]:.2f} ms "
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
