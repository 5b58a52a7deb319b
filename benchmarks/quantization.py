"""Quantization benchmark: edgeship's variants beside the peers, judged on held-out data *and* stress
probes, timed in one process, as ratios to ONNX Runtime FP32.

    .venv/bin/python benchmarks/quantization.py              # MiniLM (b1 s32, b8 s128) and EfficientNet-Lite0 (b1)
    .venv/bin/python benchmarks/quantization.py --quick      # shorter searches, fewer timing rounds
    .venv/bin/python benchmarks/quantization.py --only minilm --json out.json

What is judged: every variant's outputs against PyTorch eager FP32 on the held-out split
(``data:sentences:test`` — texts of every kind users send, each tokenised alone —, and
``data:images:test`` — crops of photos never calibrated or selected on) and on the stress probes
``edgeship check`` runs (``check/probes.py``: shortest and longest texts, special tokens only,
repeated tokens; constant, dark, bright, noisy, colour-cast images; inputs at the edges of the
calibration range). A variant passes only when both pass: MiniLM mean cosine ≥ 0.995 and min ≥ 0.98;
EfficientNet top-1 agreement on the crops where FP32 is confident (top-1 beats top-2 by more than
0.1) ≥ 99% and the FP32 top-1 among the variant's five best on ≥ 99% of crops (agreement over all
crops is shown too). Searches (mixed precision, OpenVINO's NNCF settings) select on the ``select``
splits and the selection probes, never on what they are judged on here.

Variants: ORT FP32 (the export), edgeship's int8-dynamic and mixed (ONNX Runtime, and the mixed file
on OpenVINO as built), OpenVINO FP32 and bf16 and NNCF INT8 through ``edgeship convert`` (static
shapes with length buckets for text, INT8 settings searched per model), beside the peers: NNCF INT8
with its defaults (transformer scheme with SmoothQuant for MiniLM), Optimum's ORTQuantizer
avx512_vnni preset, OpenVINO bf16 reshaped to a static shape. Latency: every variant in interleaved
rounds in this one process (2 threads; the best per-round 20th percentile), so load from other
processes hits all alike; the load average is printed with every table, and the CPU with the
instructions that matter.
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
IMAGE_GATES = ("top1_agreement_confident>=0.99", "top5_agreement>=0.99")
TEXT_BUCKETS = (8, 16, 32, 64, 128, 256)
Feeds = dict[str, np.ndarray]


# -- judging -----------------------------------------------------------------------------------------------
def verdict(ref: list[Feeds], run: Callable[[Feeds], Feeds], samples: list[Feeds], gates: tuple[str, ...],
            task: str, ids: list[str]) -> Any:
    from edgeship.check.judge import judge

    return judge(ref, [run(s) for s in samples], list(gates), task=task, by_position=True, sample_ids=ids)


def judged_row(name: str, path: Path | None, run: Callable[[Feeds], Feeds], held: Any, probes: Any,
               gates: tuple[str, ...], task: str) -> dict[str, Any]:
    """The verdicts on the held-out data and on the probes, with n, intervals and worst samples."""
    h = verdict(held["ref"], run, held["samples"], gates, task, held["ids"])
    p = verdict(probes["ref"], run, probes["samples"], tuple(g for g in gates if "accuracy" not in g), task,
                probes["ids"])
    row: dict[str, Any] = {"size_bytes": size_of(path) if path is not None else None,
                           "passed": h.passed and p.passed, "clear": h.clear_pass and p.clear_pass,
                           "held_out": _brief(h), "probes": _brief(p)}
    log(f"  {name}: held-out {'pass' if h.passed else 'FAIL'} ({h.why}); probes {'pass' if p.passed else 'FAIL'} "
        f"({p.why})")
    return row


def _brief(v: Any) -> dict[str, Any]:
    keys = ("cosine_mean", "cosine_min", "top1_agreement", "top1_agreement_confident", "top5_agreement")
    return {"passed": v.passed, "marginal": v.marginal, "rows": v.rows, "why": v.why,
            **{k: v.summary[k] for k in keys if k in v.summary},
            "stats": {k: {kk: vv for kk, vv in v.stats[k].items() if kk in ("n", "ci95", "worst_sample")}
                      for k in keys if k in v.stats}}


def reference_outputs(source: Any, samples: list[Feeds]) -> list[Feeds]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # numbers do not depend on it, and one thread never stalls on a busy machine
    try:
        return [source.forward_numpy(s) for s in samples]
    finally:
        torch.set_num_threads(before)


# -- variants ----------------------------------------------------------------------------------------------
def edgeship_quantized(src: Path, work: Path, name: str, configs: dict[str, Any], calib: str) -> dict[str, Path]:
    from edgeship.compress.quantize.api import quantize
    from edgeship.core.errors import GateFailed

    out: dict[str, Path] = {}
    for label, cfg in configs.items():
        path = work / f"{name}.{label}.onnx"
        t0 = time.perf_counter()
        log(f"quantizing {name}: {label}")
        try:
            model = quantize(src, cfg, out=path, calib=calib if cfg.needs_calibration else None)
        except GateFailed as exc:  # the closest variant is kept and judged like the others
            model = exc.model  # type: ignore[attr-defined]
        out[label] = path
        f = model.facts
        if "base_label" in f:
            log(f"  {label} chose {f['base_label']} with {len(f['nodes_kept_fp32'])} FP32 node(s) in "
                f"{time.perf_counter() - t0:.0f} s; selection ({f['gate']['data']}, {f['gate']['selection_probes']} "
                f"probes): {f['gate']['why']}")
    return out


def openvino_variants(src: Path, work: Path, name: str, calib: str, select: str, gates: tuple[str, ...],
                      text: bool, as_built: dict[str, Path] | None = None) -> tuple[dict[str, Path], dict[str, Any]]:
    """edgeship convert --target openvino: FP32, bf16, searched NNCF INT8, INT8 weights and edgeship's
    files in ``as_built`` as built (their QDQ pairs in INT8, as optimize converts mixed), static shapes
    (buckets for text); and the peers: NNCF INT8 with its defaults and bf16 reshaped static."""
    from edgeship.check.selection import int8_selector
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.core.errors import MissingDependency, NotApplicable
    from edgeship.targets.base import get_target

    target = get_target("openvino")
    model = Model.open(src)
    static = {"static_shapes": True, "length_buckets": TEXT_BUCKETS if text else ()}
    options = {
        "openvino-fp32": {"precision": "fp32"},
        "openvino-bf16-static": {"precision": "bf16", **static},
        "openvino-int8-searched-static": {"precision": "int8", **static},
        "openvino-int8-weight-static": {"precision": "int8-weight", **static},
        "peer:nncf-int8-default-static": {"precision": "int8", "search": False, **static},
    }
    out: dict[str, Path] = {}
    notes: dict[str, Any] = {}
    try:
        data = load_data(calib, model.io)
        selector = int8_selector(model, load_data(select, model.io), gates, calib=data)
        for label, opts in options.items():
            log(f"converting {name} for OpenVINO: {label}")
            t0 = time.perf_counter()
            # NNCF's settings, and the run-time activation groups of INT8 weights, chosen on the select split
            extra = {"selector": selector} if label in ("openvino-int8-searched-static",
                                                        "openvino-int8-weight-static") else {}
            m = target.convert(model, work / f"{name}.{label}.xml", calib=data, **opts, **extra)
            out[label] = m.path
            if "search" in m.facts.get("nncf", {}):
                s = m.facts["nncf"]["search"]
                notes["nncf_search"] = s
                log(f"  NNCF search chose {s['chosen']} in {time.perf_counter() - t0:.0f} s: " + "; ".join(
                    f"{c['label']}: {'pass' if c['passed'] else 'fail'} (slack {c['slack']:.3f})"
                    for c in s["candidates"]))
            if "activation_group_search" in m.facts:
                g = m.facts["activation_group_search"]
                notes["activation_group_search"] = g
                log(f"  activation groups: chose {g['chosen']} in {time.perf_counter() - t0:.0f} s: " + "; ".join(
                    f"{c['group']}: {'pass' if c['passed'] else 'fail'} (slack {c['slack']:.3f})"
                    for c in g["candidates"]))
        for built, path in (as_built or {}).items():
            label = f"openvino-{built}-as-built-static"
            log(f"converting {name} for OpenVINO: {label} (edgeship's {built} file)")
            try:
                out[label] = target.convert(Model.open(path), work / f"{name}.{label}.xml", precision="as-built",
                                            **static).path
            except NotApplicable as exc:  # ONNX Runtime's fused INT8 kernels (MiniLM's mixed)
                notes.setdefault("not_applicable", {})[label] = str(exc)
                log(f"  {label}: {exc}")
    except MissingDependency as exc:
        log(f"OpenVINO rows skipped: {exc}")
    return out, notes


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


# -- one model ---------------------------------------------------------------------------------------------
def bench_model(name: str, zoo: str, work: Path, quick: bool, rounds: int, text: bool) -> dict[str, Any]:
    from edgeship.check.probes import build_probes
    from edgeship.compress.quantize.configs import Int8DynamicConfig, Int8StaticConfig, MixedConfig
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export
    from edgeship.zoo.base import load_zoo

    source = load_zoo(zoo)
    src = work / f"{name}.onnx"
    if not src.exists():
        log(f"exporting {zoo} to ONNX")
        export(source, src)
    model = Model.open(src)
    split = "sentences" if text else "images"
    calib, select = f"data:{split}:calib", f"data:{split}:select"
    gates, task = (MINILM_GATES, "embedding") if text else (IMAGE_GATES, "classification")
    test = load_data(f"data:{split}:test", model.io, tokenizer=source.tokenizer)
    probe_set = build_probes(model.io, task, tokenizer=source.tokenizer,
                             calib=load_data(calib, model.io, limit=64, tokenizer=source.tokenizer))
    log(f"reference: PyTorch eager FP32 on {len(test)} held-out samples and {len(probe_set)} probes")
    held = {"samples": test.samples, "ids": test.sample_ids(), "ref": reference_outputs(source, test.samples)}
    probes = {"samples": probe_set.samples, "ids": probe_set.ids, "ref": reference_outputs(source, probe_set.samples)}

    if text:
        configs = {"int8-dynamic": Int8DynamicConfig(),
                   "mixed": MixedConfig(gates=gates, time_budget_s=300 if quick else 900, max_size_ratio=0.30)}
    else:
        configs = {"int8-static": Int8StaticConfig(per_channel=True),
                   "mixed": MixedConfig(gates=gates, time_budget_s=300 if quick else 900,
                                        candidates=(Int8StaticConfig(per_channel=True),
                                                    Int8StaticConfig(per_channel=True, calibration="percentile")))}
    variants: dict[str, Path] = {"ort-fp32": src}
    variants.update(edgeship_quantized(src, work, name, configs, calib))
    if text:
        opt = optimum_avx512_vnni(src, work)
        if opt is not None:
            variants["peer:optimum-avx512_vnni"] = opt
    as_built = {k: variants[k] for k in (("mixed",) if text else ("int8-static", "mixed")) if k in variants}
    ov, notes = openvino_variants(src, work, name, calib, select, gates, text, as_built)
    variants.update(ov)

    rows: dict[str, dict[str, Any]] = {"pytorch-eager-fp32": {"size_bytes": None, "passed": True, "clear": True}}
    runs = {vname: model_call(path) for vname, path in variants.items()}
    for vname, path in variants.items():
        rows[vname] = judged_row(vname, path, runs[vname], held, probes, gates, task)
    exact = {"cosine_mean": 1.0, "cosine_min": 1.0, "top1_agreement": 1.0, "top1_agreement_confident": 1.0,
             "top5_agreement": 1.0}
    rows["pytorch-eager-fp32"].update(held_out=dict(exact), probes=dict(exact))
    shapes = [(1, 32), (8, 128)] if text else [(1, None)]
    loads = []
    for batch, seq in shapes:
        feeds = test.batch(batch, seq) if seq else test.batch(batch)
        label = f"b{batch}" + (f"_s{seq}" if seq else "")
        log(f"{name}: timing {label} ({rounds} interleaved rounds)")
        calls: dict[str, Callable[[Feeds], Any]] = dict(runs)
        calls["pytorch-eager-fp32"] = source.forward_numpy
        before = os.getloadavg()
        lat = interleaved_latency(calls, feeds, rounds, per_round_s=0.3 if batch == 1 else 0.8)
        after = os.getloadavg()
        loads.append({"shape": label, "before": [round(x, 2) for x in before], "after": [round(x, 2) for x in after]})
        for vname, ms in lat.items():
            rows[vname][f"ms_{label}"] = ms
    return {"rows": rows, "fp32_size": size_of(src), "shapes": [f"b{b}" + (f"_s{s}" if s else "") for b, s in shapes],
            "test": {"name": test.name, "n": len(test), "distribution": test.info.get("distribution")},
            "probes": probe_set.to_dict(), "gates": list(gates), "load_average": loads, "notes": notes}


# -- report ------------------------------------------------------------------------------------------------
def print_model(title: str, res: dict[str, Any], text: bool) -> dict[str, Any]:
    rows, fp32 = res["rows"], res["rows"]["ort-fp32"]
    cols = [f"ms_{s}" for s in res["shapes"]]
    print(f"\n{title}: held-out {res['test']['name']} (n={res['test']['n']}) and {res['probes']['probes']} probes "
          f"({', '.join(res['probes']['families'])}); gate {' and '.join(res['gates'])} on both; "
          f"{THREADS} threads; latency ms (× ORT FP32)")
    metric = ("cosine_mean", "cosine_min") if text else ("top1_agreement_confident", "top5_agreement")
    head = (f"{'variant':38s} {'size':>6s} {'held-out ' + '/'.join(m.split('_', 1)[1] for m in metric):>28s} "
            f"{'probes min':>11s} {'all top-1':>9s} {'gate':>8s} " + " ".join(f"{c[3:]:>17s}" for c in cols))
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / res['fp32_size']:.0%}"
        h, p = r.get("held_out", {}), r.get("probes", {})
        held = " / ".join(f"{h[m]:.4f}" if m in h else "-" for m in metric)
        pmin = p.get("cosine_min") if text else p.get("top1_agreement_confident")
        gate = "-" if name.startswith("pytorch") else ("pass" if r["clear"] else "marginal" if r["passed"] else "FAIL")
        cells = " ".join(f"{r[c]:7.3f} ({fp32[c] / r[c]:5.2f}×)" if c in r else f"{'-':>17s}" for c in cols)
        print(f"{name:38s} {size:>6s} {held:>28s} {'-' if pmin is None else f'{pmin:.4f}':>11} "
              f"{h.get('top1_agreement', float('nan')):9.4f} {gate:>8s} {cells}")
    for name, r in rows.items():
        for part in ("held_out", "probes"):
            st = r.get(part, {}).get("stats", {})
            worst = st.get("cosine_min" if text else "top1_agreement_confident", {}).get("worst_sample")
            if worst and not r.get(part, {}).get("passed", True):
                print(f"  {name} {part} worst: {worst}")
    summary: dict[str, Any] = {}
    passing = {n: r for n, r in rows.items() if r["passed"] and r["size_bytes"] and n != "ort-fp32"}
    for c in cols:
        if not passing:
            break
        best = min(passing, key=lambda n: passing[n][c])
        b = passing[best]
        summary[c] = {"best": best, "x_ort_fp32": fp32[c] / b[c], "size_pct": 100 * b["size_bytes"] / res["fp32_size"]}
        print(f"best passing at {c[3:]}: {best}: {summary[c]['x_ort_fp32']:.2f}× ORT FP32 at "
              f"{summary[c]['size_pct']:.0f}% of the FP32 size")
    small = {n: r for n, r in passing.items() if r["size_bytes"] <= 0.3 * res["fp32_size"]}
    for c in cols:
        if small:
            best = min(small, key=lambda n: small[n][c])
            summary[f"{c}_small"] = {"best": best, "x_ort_fp32": fp32[c] / small[best][c],
                                     "size_pct": 100 * small[best]["size_bytes"] / res["fp32_size"]}
            print(f"best passing at {c[3:]} within 30% of the FP32 size: {best}: "
                  f"{summary[f'{c}_small']['x_ort_fp32']:.2f}× ORT FP32 at {summary[f'{c}_small']['size_pct']:.0f}%")
    if not passing:
        print("no variant but FP32 passes on the held-out data and the probes")
    print(f"load average (1/5/15 min) before and after each timing: {res['load_average']}")
    return summary


def cpu_line() -> str:
    from edgeship.targets.cpu import cpu_info, openvino_capabilities

    info = cpu_info()
    names = info.to_dict()["instructions"]
    return (f"CPU: {info.model}; {os.cpu_count()} cores; instructions: {', '.join(names)}; "
            f"OpenVINO CPU capabilities: {', '.join(openvino_capabilities() or ('-',))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter mixed searches, fewer timing rounds")
    ap.add_argument("--only", choices=("minilm", "efficientnet"), help="one model only")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "edgeship-bench-quant"),
                    help="folder for the exported and quantized models (the exports are reused)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 7, quick 5)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or (5 if args.quick else 7)
    t0 = time.perf_counter()
    print(cpu_line())
    results: dict[str, Any] = {"cpu": cpu_line()}
    summary: dict[str, Any] = {}
    def save() -> None:  # after every model, so a later failure loses nothing measured
        if args.json:
            Path(args.json).write_text(json.dumps({**results, "summary": summary}, indent=1, default=str))

    if args.only in (None, "minilm"):
        results["minilm"] = bench_model("minilm", "zoo:minilm", work, args.quick, rounds, text=True)
        save()
        summary["minilm"] = print_model("MiniLM (all-MiniLM-L6-v2)", results["minilm"], text=True)
        save()
    if args.only in (None, "efficientnet"):
        results["efficientnet"] = bench_model("efficientnet-lite0", "zoo:efficientnet-lite0", work, args.quick,
                                              rounds, text=False)
        save()
        summary["efficientnet"] = print_model("EfficientNet-Lite0", results["efficientnet"], text=False)
    print(f"\n{cpu_line()}\n(total {time.perf_counter() - t0:.0f} s; models in {work})")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
