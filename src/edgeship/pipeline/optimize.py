"""``optimize``: export → variants × targets → check against golden outputs → bench → report.

Every step runs through a :class:`RunStore`, so re-running a recipe reuses finished steps and
redoes only what changed. The run directory holds the recipe, every model file, the golden outputs,
each step's record and the reports (JSON, Markdown, self-contained HTML).
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

from edgeship import __version__
from edgeship.core import atomic
from edgeship.core.artifact import Model, file_sha256
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, GateFailed, NotApplicable, NotRunnableHere
from edgeship.core.progress import status
from edgeship.pipeline.recipe import OptimizeRecipe
from edgeship.pipeline.store import RunStore
from edgeship.pipeline.variants import VariantContext, get_variant

DEFAULT_BENCH_SEQ = 32  # symbolic sequence dims are benchmarked at this length unless the recipe says

# Targets other than ONNX Runtime quantize with their own tools (onnx2tf, NNCF, PT2E): an ONNX-level
# variant maps to the target precision that makes the same kind of model from the FP32 source.
# FP32-precision variants (fp32 itself, pruned or distilled models) are converted as they are.
TARGET_PRECISION = {"fp16": "fp16", "int8-dynamic": "int8-dynamic", "int8-static": "int8"}


def load_recipe(recipe: OptimizeRecipe | str | Path | dict[str, Any]) -> OptimizeRecipe:
    if isinstance(recipe, OptimizeRecipe):
        return recipe
    if isinstance(recipe, dict):
        return OptimizeRecipe.from_dict(recipe)
    return OptimizeRecipe.load(recipe)


def optimize(recipe: OptimizeRecipe | str | Path | dict[str, Any]) -> dict[str, Any]:
    """Run a recipe; returns the report dict (also written to ``<out>/report.json``)."""
    from edgeship.sources.resolve import resolve as load_source

    r = load_recipe(recipe)
    run_dir = Path(r.out or f"runs/{r.run_name()}")
    if run_dir.exists() and not run_dir.is_dir():
        raise BadInput(f"--out {str(run_dir)!r} is a file; give a folder for the run")
    store = RunStore(run_dir)
    atomic.write_text(run_dir / "recipe.yaml", r.to_yaml())
    t_start = time.perf_counter()
    status(f"edgeship optimize {r.model} → {run_dir}")

    source = load_source(r.model, trust_pickle=r.trust_pickle)
    is_torch = not isinstance(source, Model)
    tokenizer = None if isinstance(source, Model) else source.tokenizer
    task = source.facts.get("task", "other") if isinstance(source, Model) else source.task
    gates = tuple(r.gates) or tuple(getattr(source, "gate", ()) or ())
    eval_spec = r.data or getattr(source, "eval_data", None)
    calib_spec = r.calib or getattr(source, "calib_data", None)
    if eval_spec is None:
        raise BadInput(f"{r.model}: no evaluation data; give --data (data:NAME, an .npz, a folder of .npy)")

    # 1. the FP32 ONNX source of every variant
    fp32_path = run_dir / "fp32.onnx"
    export_note = store.step("export", {"model": r.model, "content": _fingerprint(r.model), "export": r.export,
                                        "edgeship": __version__},
                             functools.partial(_export, source, fp32_path, r), files=lambda _: ["fp32.onnx"])
    fp32 = Model.open(fp32_path)

    # 2. golden outputs on the held-out data: PyTorch eager for a torch source, else ONNX Runtime
    golden_path = run_dir / "golden.npz"
    golden = store.step("golden", {"model": r.model, "content": _fingerprint(r.model), "data": eval_spec,
                                   "data_content": _fingerprint(eval_spec), "limit": r.limit,
                                   "fp32": file_sha256(fp32_path) if not is_torch else None, "gates": gates},
                        functools.partial(_golden, source if is_torch else fp32, fp32, eval_spec, r.limit,
                                          golden_path, task, gates),
                        files=lambda _: ["golden.npz"])

    ctx_data = {"calib": calib_spec, "eval": eval_spec}
    skipped: list[str] = []
    seq = r.seq if r.seq is not None else (DEFAULT_BENCH_SEQ if _has_sequence_dim(fp32) else None)
    rows: list[dict[str, Any]] = []

    # 3. the PyTorch eager baseline, timed like everything else
    baseline = None
    if r.baseline and is_torch:
        res = store.step("bench-pytorch", _bench_key(r, seq, "pytorch", r.model),
                         functools.partial(_bench, r.model, eval_spec, r, seq, None))
        baseline = {"id": "pytorch-eager-fp32", "target": "pytorch-cpu", "precision": "fp32",
                    "latency_ms": res.get("latency_ms"), "throughput_per_s": res.get("throughput_per_s"),
                    "peak_rss_mb": res.get("peak_rss_mb"), "error": res.get("error"), "busy": res.get("busy")}

    # 4. variants × targets
    for vname in r.variants:
        variant = get_variant(vname)
        vpath = run_dir / f"{vname}.onnx"
        ctx = VariantContext(fp32, source if is_torch else None, vpath,
                             functools.partial(_load_split, ctx_data["calib"], fp32, "calibration",
                                               tokenizer=tokenizer),
                             functools.partial(_load_split, eval_spec, fp32, "evaluation", r.limit, tokenizer),
                             golden_path, gates, task, dict(r.variant_options.get(vname, {})))
        plan = {t: _conversion_plan(vname, variant.precision, t, is_torch) for t in r.targets}
        for t, (_, why) in plan.items():
            if why:
                skipped.append(f"{vname}@{t}: {why}")
        if all(why for _, why in plan.values()):
            continue
        if any(how[0] == "variant" and not why for how, why in plan.values()):
            built = store.step(f"build-{vname}", {"variant": vname, "options": ctx.options,
                                                  "fp32": file_sha256(fp32_path), "calib": calib_spec, "gates": gates,
                                                  "edgeship": __version__},
                               functools.partial(_build, variant, ctx, run_dir),
                               files=lambda res: [res["path"]] if res.get("path") else [])
        else:  # every target quantizes the FP32 source with its own tools: no ONNX variant to build
            built = {"path": "fp32.onnx"}
        if "not_applicable" in built:
            skipped.append(f"{vname}: {built['not_applicable']}")
            continue
        for tname in r.targets:
            how, why = plan[tname]
            if not why:
                rows.append(_variant_on_target(store, r, run_dir, vname, variant.precision, built, tname, how,
                                               source if is_torch else None, golden_path, eval_spec, calib_spec, seq))

    _choose(rows)
    fp32_row = next((x for x in rows if x["id"] == "fp32@onnxruntime" and x.get("latency_ms")), None)
    for row in rows:
        _ratios(row, fp32_row, baseline)
    report = {
        "model": r.model,
        "task": task,
        "run_dir": str(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "edgeship": __version__,
        "data": {"eval": eval_spec, "calib": calib_spec, "samples": golden["samples"], "rows": golden["rows"]},
        "gates": list(gates),
        "golden": "golden.npz",
        "bench": {"batch": r.batch, "seq": seq, "threads": r.threads},
        "export": export_note,
        "baseline": baseline,
        "variants": rows,
        "skipped": skipped,
        "steps": {"ran": store.ran, "reused": store.reused},
    }
    from edgeship.bench.sysinfo import system_info
    from edgeship.report.writers import write_reports

    report["system"] = system_info()
    busy = [row.get("bench_busy") for row in rows if row.get("bench_busy")] + ([baseline["busy"]] if baseline and
                                                                                baseline.get("busy") else [])
    if busy:
        report["warnings"] = [busy[-1]]
    write_reports(report, run_dir)
    status(f"done in {time.perf_counter() - t_start:.1f} s: {run_dir / 'report.html'}")
    return report


def exit_code(report: dict[str, Any]) -> int:
    """0 when every target that could run here has a chosen (passing) variant, else 1."""
    targets = {r["target"] for r in report["variants"] if r.get("status") != "not_run"}
    chosen = {r["target"] for r in report["variants"] if r.get("chosen")}
    return 0 if targets <= chosen else 1


# -- steps -------------------------------------------------------------------------------------------
def _export(source: Any, out: Path, r: OptimizeRecipe) -> dict[str, Any]:
    if isinstance(source, Model):
        with atomic.atomic_path(out) as tmp:
            shutil.copyfile(source.path, tmp)
        source.derive(out, "copy", {}, facts=source.facts).save()
        return {"from": str(source.path), "exporter": "copy"}
    from edgeship.export.config import ExportConfig
    from edgeship.export.exporter import export

    try:
        model = export(source, out, ExportConfig.from_dict(dict(r.export)))
    except GateFailed as exc:  # parity failed: the file is kept and the check step will judge it
        return {"parity_failed": str(exc)}
    return {"exporter": model.facts.get("exporter"), "opset": model.facts.get("opset"),
            "parity": model.facts.get("parity")}


def _golden(reference: Any, fp32: Model, data: str, limit: int | None, out: Path, task: str,
            gates: tuple[str, ...]) -> dict[str, Any]:
    from edgeship.check.comparator import run_all
    from edgeship.sources.subject import Subject, resolve_subject
    from edgeship.targets.base import runner_for_subject

    subj: Subject = resolve_subject(reference)
    ds = load_data(data, fp32.io if isinstance(reference, Model) else subj.io, limit=limit, tokenizer=subj.tokenizer)
    if subj.source is not None:
        # One intra-op thread: eager PyTorch on per-sample inputs gains little from more, and with two
        # spinning OpenMP threads on two busy cores it can run 20x slower.
        import torch

        before = torch.get_num_threads()
        try:
            outputs = run_all(runner_for_subject(subj, threads=1), ds.samples)
        finally:
            torch.set_num_threads(before)
    else:
        outputs = run_all(runner_for_subject(subj), ds.samples)
    # Golden outputs carry the ONNX model's output names so any variant matches them by name.
    names = fp32.io.output_names
    if list(outputs[0]) != names and len(outputs[0]) == len(names):
        outputs = [dict(zip(names, o.values(), strict=True)) for o in outputs]
    from edgeship.core.golden import save_golden

    save_golden(out, ds.samples, outputs, ds.labels,
                {"reference": subj.name, "data": data, "task": task, "gates": list(gates)})
    return {"samples": len(ds.samples), "rows": ds.rows, "reference": subj.name}


def _load_split(spec: str | None, fp32: Model, what: str, limit: int | None = None,
                tokenizer: Any = None) -> Dataset:
    if spec is None:
        field = "calib" if what == "calibration" else "data"
        raise BadInput(f"this variant needs {what} data; give it in the recipe ({field}: ...) or with --{field}")
    return load_data(spec, fp32.io, limit=limit, tokenizer=tokenizer)


def _build(variant: Any, ctx: VariantContext, run_dir: Path) -> dict[str, Any]:
    try:
        model = variant.build(ctx)
    except NotApplicable as exc:
        return {"not_applicable": str(exc)}
    except EdgeshipError as exc:
        return {"error": str(exc)}
    return {"path": str(model.path.relative_to(run_dir)) if model.path.is_relative_to(run_dir) else str(model.path),
            "facts": {k: v for k, v in model.facts.items() if k != "parity"}}


def _conversion_plan(vname: str, precision: str, tname: str, is_torch: bool) -> tuple[tuple[str, str], str]:
    """How a variant reaches a target: ((input, target precision), "") or (_, why it cannot).

    input is "variant" (the variant's ONNX file), "fp32" (the FP32 ONNX file, quantized by the
    target's own tools) or "torch" (the PyTorch source, for converters that need it).
    """
    from edgeship.targets.base import get_target

    if tname == "onnxruntime":
        return ("variant", precision), ""
    target = get_target(tname)
    tprec = "fp32" if precision == "fp32" else TARGET_PRECISION.get(vname)
    if tprec is None or tprec not in target.precisions:
        return ("", ""), f"{tname} offers no {vname} conversion (its precisions: {', '.join(target.precisions)})"
    if "onnx" in target.formats:
        return ("variant" if precision == "fp32" else "fp32", tprec), ""
    if "torch" in target.formats and is_torch and vname in ("fp32", *TARGET_PRECISION):
        return ("torch", tprec), ""
    return ("", ""), f"{tname} converts only from {', '.join(target.formats)} sources"


def _variant_on_target(store: RunStore, r: OptimizeRecipe, run_dir: Path, vname: str, precision: str,
                       built: dict[str, Any], tname: str, how: tuple[str, str], source: Any, golden: Path,
                       eval_spec: str, calib_spec: str | None, seq: int | None) -> dict[str, Any]:
    from edgeship.targets.base import get_target

    target = get_target(tname)
    row: dict[str, Any] = {"id": f"{vname}@{tname}", "variant": vname, "target": target.report_name or tname,
                           "precision": precision, "path": None, "size_bytes": None, "metrics": {},
                           "latency_ms": None, "gate": {"passed": False, "why": ""}, "status": "error",
                           "chosen": False}
    if "error" in built:
        row["gate"]["why"] = f"build failed: {built['error']}"
        return row
    model_rel = built["path"]
    if tname != "onnxruntime":
        what, tprec = how
        row["precision"] = tprec if precision != "fp32" else precision
        src_rel = model_rel if what == "variant" else "fp32.onnx"
        conv = store.step(f"convert-{vname}-{tname}",
                          {"model": file_sha256(run_dir / src_rel), "from": what, "target": tname,
                           "precision": tprec, "calib": calib_spec, "edgeship": __version__},
                          functools.partial(_convert, target, run_dir, src_rel, source if what == "torch" else None,
                                            f"{vname}.{tname}", tprec, calib_spec,
                                            None if source is None else source.tokenizer),
                          files=lambda res: [res["path"]] if res.get("path") else [])
        if "error" in conv or "not_run" in conv:
            row["status"] = "not_run" if "not_run" in conv else "error"
            row["gate"]["why"] = conv.get("not_run") or f"convert failed: {conv['error']}"
            return row
        model_rel = conv["path"]
        row["target_facts"] = conv.get("facts", {})
        if "arena_bytes" in row["target_facts"]:
            row["arena_bytes"] = row["target_facts"]["arena_bytes"]
    path = run_dir / model_rel
    row["path"] = model_rel
    row["size_bytes"] = Model.open(path).size_bytes
    sha = file_sha256(path)
    chk = store.step(f"check-{vname}-{tname}", {"model": sha, "golden": file_sha256(golden), "runtime": tname,
                                                "precision": precision},
                     functools.partial(_check, golden, path, tname, r.threads, precision))
    row["metrics"] = {k: v for k, v in chk.get("summary", {}).items() if k != "nonfinite"}
    row["per_output"] = chk.get("outputs", {})
    row["gate"] = {"passed": chk["status"] == "pass", "why": chk.get("why", ""), "gates": chk.get("gates", [])}
    row["tightest"] = chk.get("tightest", [])
    if chk.get("first_divergence"):
        row["first_divergence"] = chk["first_divergence"]
    row["status"] = chk["status"]
    if chk["status"] in ("not_run", "error"):
        return row
    res = store.step(f"bench-{vname}-{tname}", _bench_key(r, seq, tname, sha),
                     functools.partial(_bench, str(path), eval_spec, r, seq, tname))
    row["latency_ms"] = res.get("latency_ms")
    row["throughput_per_s"] = res.get("throughput_per_s")
    row["load_time_s"] = res.get("load_time_s")
    row["peak_rss_mb"] = res.get("peak_rss_mb")
    if res.get("busy"):
        row["bench_busy"] = res["busy"]
    if res.get("error"):
        row["bench_error"] = res["error"]
    return row


def _convert(target: Any, run_dir: Path, model_rel: str, source: Any, stem: str, precision: str,
             calib_spec: str | None, tokenizer: Any = None) -> dict[str, Any]:
    model = Model.open(run_dir / model_rel)
    suffix = getattr(target, "suffix", "") or f".{target.output_format}"
    out = run_dir / f"{stem}{suffix}"
    try:
        calib = (load_data(calib_spec, model.io, tokenizer=tokenizer)
                 if calib_spec and precision.startswith("int") else None)
        converted = target.convert(source if source is not None else model, out, precision=precision, calib=calib)
    except NotRunnableHere as exc:
        return {"not_run": str(exc)}
    except EdgeshipError as exc:
        return {"error": str(exc)}
    # what the target measured about its file (tensor arena, layout, delegated ops) goes in the report
    kept = ("arena_bytes", "input_layout", "delegated_ops", "portable_ops", "inference_precision")
    return {"path": str(converted.path.relative_to(run_dir)),
            "facts": {k: v for k, v in converted.facts.items() if k in kept}}


def _check(golden: Path, model: Path, runtime: str, threads: int | None, precision: str) -> dict[str, Any]:
    from edgeship.check.comparator import check

    result = check(str(golden), [str(model)], runtime=runtime, threads=threads, precision=precision)
    cand = result.candidates[0]
    fp32 = model.parent / "fp32.onnx"
    if cand.status == "fail" and model.suffix == ".onnx" and fp32.exists() and model != fp32:
        from edgeship.check.comparator import localize

        cand.first_divergence = localize(Model.open(fp32), Model.open(model), result.inputs)
    return cand.to_dict()


def _bench_key(r: OptimizeRecipe, seq: int | None, runtime: str, model: str) -> dict[str, Any]:
    return {"model": model, "runtime": runtime, "batch": r.batch, "seq": seq, "threads": r.threads,
            "min_time": r.bench_min_time_s, "data": r.data}


def _bench(model: str, data: str, r: OptimizeRecipe, seq: int | None, runtime: str | None) -> dict[str, Any]:
    from edgeship.bench.harness import bench

    try:
        res = bench(model, data=data, batch=r.batch, seq=seq, threads=r.threads, runtime=runtime,
                    min_time_s=r.bench_min_time_s)
    except EdgeshipError as exc:
        return {"error": str(exc)}
    res.pop("system", None)
    return res


def _fingerprint(spec: str | None) -> str | None:
    """Content hash of a file-based spec (model.onnx, net.py:build, data.npz), so edits rerun steps."""
    if not spec or spec.startswith(("zoo:", "data:")):
        return None
    path = Path(spec)
    if not path.exists() and ":" in spec:
        path = Path(spec.rsplit(":", 1)[0])
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():
        return file_sha256(path)
    return None


def _has_sequence_dim(model: Model) -> bool:
    return any(len(t.shape) > 1 and not isinstance(t.shape[1], int) for t in model.io.inputs)


def _choose(rows: list[dict[str, Any]]) -> None:
    """Mark the fastest passing variant per target."""
    by_target: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["gate"]["passed"] and row.get("latency_ms"):
            best = by_target.get(row["target"])
            if best is None or row["latency_ms"]["p50"] < best["latency_ms"]["p50"]:
                by_target[row["target"]] = row
    for row in by_target.values():
        row["chosen"] = True


def _ratios(row: dict[str, Any], fp32_row: dict[str, Any] | None, baseline: dict[str, Any] | None) -> None:
    lat = (row.get("latency_ms") or {}).get("p50")
    if lat and fp32_row:
        row["speedup_vs_ort_fp32"] = fp32_row["latency_ms"]["p50"] / lat
    if lat and baseline and baseline.get("latency_ms"):
        row["speedup_vs_pytorch"] = baseline["latency_ms"]["p50"] / lat
    if row.get("size_bytes") and fp32_row and fp32_row.get("size_bytes"):
        row["size_ratio"] = row["size_bytes"] / fp32_row["size_bytes"]
