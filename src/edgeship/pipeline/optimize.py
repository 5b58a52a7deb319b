"""``optimize``: export → variants × targets → check against golden outputs → bench → report.

Every step runs through a :class:`RunStore`, so re-running a recipe reuses finished steps and
redoes only what changed. The run directory holds the recipe, every model file, the golden outputs,
each step's record and the reports (JSON, Markdown, self-contained HTML).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

from edgeship import __version__
from edgeship.core import atomic
from edgeship.core.artifact import IOSpec, Model, file_sha256
from edgeship.core.data import Dataset, load_data
from edgeship.core.errors import BadInput, EdgeshipError, GateFailed, NotApplicable, NotRunnableHere
from edgeship.core.progress import progress_bar, status
from edgeship.pipeline.executors import Executor, ExecutorConfig, job_threads, make_executor
from edgeship.pipeline.recipe import OptimizeRecipe
from edgeship.pipeline.store import RunStore
from edgeship.pipeline.variant_rules import PlanFacts, implied_calibration, why_skipped
from edgeship.pipeline.variants import VariantContext, get_variant
from edgeship.report.schema import SCHEMA_VERSION

FLOAT_PRECISIONS = ("fp32", "fp16", "bf16")  # target precisions a converter makes without calibrating
DEFAULT_BENCH_SEQ = 32  # symbolic sequence dims are benchmarked at this length unless the recipe says

# Targets other than ONNX Runtime quantize with their own tools (onnx2tf, NNCF, PT2E): an ONNX-level
# variant maps to the target precision that makes the same kind of model from the FP32 source.
# FP32-precision variants (fp32 itself, pruned or distilled models) are converted as they are.
TARGET_PRECISION = {"fp16": "fp16", "int8-dynamic": "int8-dynamic", "int8-static": "int8", "int8-weight": "int8-weight",
                    "mixed": "as-built"}
# target precisions that take the variant's own ONNX file (its quantization as built), not the FP32 one
AS_BUILT = ("as-built",)


def load_recipe(recipe: OptimizeRecipe | str | Path | dict[str, Any]) -> OptimizeRecipe:
    if isinstance(recipe, OptimizeRecipe):
        return recipe
    if isinstance(recipe, dict):
        return OptimizeRecipe.from_dict(recipe)
    return OptimizeRecipe.load(recipe)


def optimize(recipe: OptimizeRecipe | str | Path | dict[str, Any], executor: ExecutorConfig | None = None,
             ) -> dict[str, Any]:
    """Run a recipe; returns the report dict (also written to ``<out>/report.json``). ``executor`` says
    where the independent jobs run (default: local processes, parallel where the cores allow)."""
    from edgeship.sources.resolve import resolve as load_source

    r = load_recipe(recipe)
    run_dir = Path(r.out or f"runs/{r.run_name()}")
    if run_dir.exists() and not run_dir.is_dir():
        raise BadInput(f"--out {str(run_dir)!r} is a file; give a folder for the run")
    store = RunStore(run_dir)
    atomic.write_text(run_dir / "recipe.yaml", r.to_yaml())
    t_start = time.perf_counter()
    status(f"edgeship optimize {r.model} → {run_dir}")

    with make_executor(executor) as ex:  # closed on an error too: no worker finishes a fine-tune for nobody
        # worker processes start and prepare while this process loads the source, exports and makes golden
        # outputs; builds that train need only the PyTorch source, so they start beside the export
        ex.warm(_prepare_worker, r.to_dict())
        source = load_source(r.model, trust_pickle=r.trust_pickle, task=r.task)
        is_torch = not isinstance(source, Model)
        tokenizer = None if isinstance(source, Model) else source.tokenizer
        task = source.facts.get("task", "other") if isinstance(source, Model) else source.task
        gates = tuple(r.gates) or tuple(getattr(source, "gate", ()) or ())
        eval_spec = r.data or getattr(source, "eval_data", None)
        calib_spec = _calibration_spec(r, source)
        if eval_spec is None:
            raise BadInput(f"{r.model}: no evaluation data; give --data (data:NAME, an .npz, a folder of .npy)")
        sweep = Sweep(r.to_dict(), str(run_dir.resolve()), eval_spec, calib_spec, None, gates, task, is_torch)
        started = {v: ex.submit_beside(_build_job, sweep, v) for v in _trains_early(r, ex, is_torch, calib_spec)}

        # 1. the FP32 ONNX source of every variant
        fp32_path = run_dir / "fp32.onnx"
        export_note = store.step("export", {"model": r.model, "content": _fingerprint(r.model), "export": r.export,
                                            "shapes": r.shapes, "edgeship": __version__},
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

        skipped: list[str] = []
        seq = r.seq if r.seq is not None else (DEFAULT_BENCH_SEQ if _has_sequence_dim(fp32) else None)
        sweep = dataclasses.replace(sweep, seq=seq, content=file_sha256(fp32_path))
        # this process has them already (the file by its absolute path, as the workers open it: a job
        # here records paths relative to the run folder's absolute path)
        _OPENED[sweep.key] = _Opened(r, Model.open(fp32_path.resolve()), source, tokenizer)

        # 3. variants × targets (build, convert, check) as independent jobs on the executor; then
        # 4. the benchmarks (the PyTorch eager baseline first), each alone on the timing machine
        status(f"  executor: {ex.name}, {ex.workers} at once" + (" (parallel)" if ex.parallel else ""))
        t_jobs = time.perf_counter()
        rows = _sweep(sweep, ex, store, skipped, started)
        jobs_s = time.perf_counter() - t_jobs - ex.alone_s  # the independent jobs' wall time, timed ones apart
        baseline = None
        if r.baseline and is_torch:
            res = _merge(store, ex.alone(_baseline_job, sweep))["result"]
            baseline = {"id": "pytorch-eager-fp32", "target": "pytorch-cpu", "precision": "fp32",
                        "latency_ms": res.get("latency_ms"), "throughput_per_s": res.get("throughput_per_s"),
                        "peak_rss_mb": res.get("peak_rss_mb"), "error": res.get("error"), "busy": res.get("busy")}
        with progress_bar("benchmarks", total=len(rows)) as advance:
            for k, row in enumerate(rows):
                if row["status"] not in ("not_run", "error"):
                    rows[k] = _merge(store, ex.alone(_bench_job, sweep, row))["row"]
                advance()
        executor_note = {**ex.describe(), "jobs_wall_s": round(jobs_s, 2), "timed_wall_s": round(ex.alone_s, 2)}

    from edgeship.pipeline.hardware_maps import attach_maps

    attach_maps(rows, r, run_dir)  # each row's hardware map, and the map gates
    _choose(rows)
    fp32_row = next((x for x in rows if x["id"] == "fp32@onnxruntime" and x.get("latency_ms")), None)
    for row in rows:
        _ratios(row, fp32_row, baseline)
    report = {
        "schema_version": SCHEMA_VERSION,
        "model": r.model,
        "task": task,
        "run_dir": str(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "edgeship": __version__,
        "data": {"eval": eval_spec, "calib": calib_spec, "samples": golden["samples"], "rows": golden["rows"],
                 "distribution": golden.get("distribution"), "probes": golden.get("probes")},
        "gates": list(gates),
        "golden": "golden.npz",
        "bench": {"batch": r.batch, "seq": seq, "threads": r.threads},
        "export": export_note,
        "baseline": baseline,
        "variants": rows,
        "skipped": skipped,
        "steps": {"ran": store.ran, "reused": store.reused},
        "executor": executor_note,
    }
    from edgeship.report.summary import recommend

    report["recommendation"] = recommend(report)
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


# -- the sweep's jobs --------------------------------------------------------------------------------
# A job is a module-level function of a Sweep (plain data, so it pickles to a worker process or a Ray
# node) that reopens what it needs there once per process (_OPENED), runs its steps through the run
# folder's RunStore and returns plain data with the steps it ran and reused.
@dataclasses.dataclass(frozen=True)
class Sweep:
    recipe: dict[str, Any]
    run_dir: str  # absolute: the same folder from every worker
    eval_spec: str
    calib_spec: str | None
    seq: int | None
    gates: tuple[str, ...]
    task: str
    is_torch: bool
    content: str | None = None  # the FP32 file's hash: a worker that cached an older one reopens it

    @property
    def key(self) -> str:
        return json.dumps([self.run_dir, self.recipe, self.content], sort_keys=True, default=str)

    def opened(self) -> _Opened:
        if self.key not in _OPENED:
            if not Path(self.run_dir).is_dir():
                raise BadInput(f"the run folder {self.run_dir} is not visible here: every worker (each Ray node) "
                               "needs it at the same path, on a shared filesystem")
            _OPENED[self.key] = _Opened(OptimizeRecipe.from_dict(self.recipe), Path(self.run_dir) / "fp32.onnx")
        return _OPENED[self.key]


class _Opened:
    """A sweep's recipe and, each opened on first use, its FP32 model (a build that trains may run
    before the export) and PyTorch source, in one process."""

    def __init__(self, recipe: OptimizeRecipe, fp32: Model | Path, source: Any = None, tokenizer: Any = None) -> None:
        self.recipe, self._fp32 = recipe, fp32
        self._source, self._tokenizer, self._loaded = source, tokenizer, source is not None

    @property
    def fp32(self) -> Model:
        if not isinstance(self._fp32, Model):
            self._fp32 = Model.open(self._fp32)
        return self._fp32

    def _load(self) -> None:
        if not self._loaded:
            self._source = _cached_source(self.recipe.model, self.recipe.trust_pickle, self.recipe.task)
            self._tokenizer = None if isinstance(self._source, Model) else self._source.tokenizer
            self._loaded = True

    @property
    def source(self) -> Any:
        self._load()
        return self._source

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tokenizer


_OPENED: dict[str, _Opened] = {}
_SOURCES: dict[tuple[str, bool, str | None], Any] = {}  # what this process resolved, by the recipe's fields


def _calibration_spec(r: OptimizeRecipe, source: Any) -> str | None:
    """The calibration data: the user's, else what their evaluation data implies (data:images →
    data:images:calib), else the model's own."""
    return r.calib or implied_calibration(r.data) or getattr(source, "calib_data", None)


def _prepare_worker(recipe: dict[str, Any]) -> None:
    """What a worker does before its first job: resolve the source and, for a PyTorch one, load the
    calibration data, run the model on a sample and export a tiny module (a process's first torch
    operations, data loaders, exports and their imports cost seconds: paid here, while the sweep
    exports, not in the first build)."""
    r = OptimizeRecipe.from_dict(recipe)
    source = _cached_source(r.model, r.trust_pickle, r.task)
    if isinstance(source, Model):
        return
    spec = _calibration_spec(r, source)
    if spec:
        calib = load_data(spec, source.io, limit=1, tokenizer=source.tokenizer)
        source.forward_numpy(calib.samples[0])
    from edgeship.export.torch_export import warm_exporter

    warm_exporter()  # builds that train export their result


def _cached_source(model: str, trust_pickle: bool, task: str | None) -> Any:
    """The recipe's source, resolved once per process (a worker does it while the sweep exports)."""
    from edgeship.sources.resolve import resolve

    key = (model, trust_pickle, task)
    if key not in _SOURCES:
        _SOURCES[key] = resolve(model, trust_pickle=trust_pickle, task=task)
    return _SOURCES[key]


def _job_result(store: RunStore, **result: Any) -> dict[str, Any]:
    return {**result, "ran": list(store.ran), "reused": list(store.reused)}


def _merge(store: RunStore, result: dict[str, Any]) -> dict[str, Any]:
    """Record a job's steps in the sweep's store (the report lists them) and return its result."""
    store.ran.extend(n for n in result["ran"] if n not in store.ran)
    store.reused.extend(n for n in result["reused"] if n not in store.reused)
    return result


def _build_job(sw: Sweep, vname: str) -> dict[str, Any]:
    o, store, run_dir = sw.opened(), RunStore(sw.run_dir), Path(sw.run_dir)
    r = o.recipe
    variant = get_variant(vname)
    if variant.trains:  # from the PyTorch source alone, so it may start before the export
        fp32, io, start = None, o.source.io, {"model": r.model, "content": _fingerprint(r.model), "task": r.task}
    else:
        fp32, start = o.fp32, {"fp32": file_sha256(run_dir / "fp32.onnx")}
        io = fp32.io
    ctx = VariantContext(fp32, o.source if sw.is_torch else None, run_dir / f"{vname}.onnx",
                         lambda: _load_split(sw.calib_spec, io, "calibration", tokenizer=o.tokenizer),
                         lambda: _load_split(sw.eval_spec, io, "evaluation", r.limit, o.tokenizer),
                         run_dir / "golden.npz", sw.gates, sw.task, dict(r.variant_options.get(vname, {})))
    built = store.step(f"build-{vname}", {"variant": vname, "options": ctx.options, **start, "calib": sw.calib_spec,
                                          "calib_content": _fingerprint(sw.calib_spec), "gates": sw.gates,
                                          "edgeship": __version__},
                       functools.partial(_build, variant, ctx, run_dir),
                       files=lambda res: [res["path"]] if res.get("path") else [])
    return _job_result(store, built=built)


def _target_job(sw: Sweep, vname: str, built: dict[str, Any], tname: str, how: tuple[str, str]) -> dict[str, Any]:
    o, store, run_dir = sw.opened(), RunStore(sw.run_dir), Path(sw.run_dir)
    source = o.source if sw.is_torch and tname != "onnxruntime" else None  # only converters use it
    row = _variant_on_target(store, o.recipe, run_dir, vname, get_variant(vname).precision, built, tname, how,
                             source, run_dir / "golden.npz", sw.eval_spec, sw.calib_spec, sw.seq, bench=False)
    return _job_result(store, row=row)


def _bench_job(sw: Sweep, row: dict[str, Any]) -> dict[str, Any]:
    store = RunStore(sw.run_dir)
    o = sw.opened()
    return _job_result(store, row=_bench_row(store, o.recipe, Path(sw.run_dir), row, sw.eval_spec, sw.seq,
                                             o.tokenizer if sw.is_torch else None))


def _baseline_job(sw: Sweep) -> dict[str, Any]:
    r, store = sw.opened().recipe, RunStore(sw.run_dir)
    res = store.step("bench-pytorch", _bench_key(r, sw.seq, "pytorch", r.model),
                     functools.partial(_bench, r.model, sw.eval_spec, r, sw.seq, None))
    return _job_result(store, result=res)


def _trains_early(r: OptimizeRecipe, ex: Executor, is_torch: bool, calib_spec: str | None) -> list[str]:
    """The builds that train, to start beside the export: they need only the PyTorch source and the
    calibration data. Where jobs run in parallel only (one process gains nothing), and with calibration
    data (without it the plan skips them). Should the plan still skip every cell of one, its build is
    wasted work, not a row."""
    if not (ex.parallel and is_torch and calib_spec):
        return []
    return [v for v in r.variants if get_variant(v).trains and not get_variant(v).timed]


def _sweep(sw: Sweep, ex: Executor, store: RunStore, skipped: list[str],
           started: dict[str, cf.Future[Any]] | None = None) -> list[dict[str, Any]]:
    """Every (variant, target) row, checked but not yet timed, in the recipe's order.

    First the builds that train (``started``: those begun before the export), the conversions that
    start from the FP32 file or the PyTorch source (a target's own quantizer: often long, and they
    need no build), the other builds, and each variant's conversions and checks of its built file as
    soon as its build is done. Then builds that time candidates (a variant marked ``timed``), each
    alone, and their conversions and checks."""
    started = dict(started or {})
    r = sw.opened().recipe
    plans = {v: {t: _conversion_plan(v, get_variant(v).precision, t, sw.is_torch) for t in r.targets}
             for v in r.variants}
    # before any work: the cells that cannot be built (no calibration data) or cannot pay, with why
    facts = PlanFacts(sw.opened().fp32, sw.calib_spec)
    plans = {v: {t: (how, why or why_skipped(v, t, how, facts)) for t, (how, why) in plan.items()}
             for v, plan in plans.items()}
    notes: dict[str, list[str]] = {v: [f"{v}@{t}: {why}" for t, (_, why) in plan.items() if why]
                                   for v, plan in plans.items()}
    wanted = [v for v in r.variants if not all(why for _, why in plans[v].values())]
    needs_build = [v for v in wanted if any(how[0] == "variant" and not why for how, why in plans[v].values())]
    built: dict[str, dict[str, Any]] = {v: {"path": "fp32.onnx"} for v in wanted if v not in needs_build}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    targets_of = {v: [t for t in r.targets if not plans[v][t][1]] for v in wanted}
    # cells that do not use the variant's own file start before its build
    early = {v: [t for t in targets_of[v] if plans[v][t][0][0] != "variant"] if v in needs_build else []
             for v in wanted}
    dropped: set[str] = set()  # variants whose build found them not applicable: no rows
    total = len(needs_build) + sum(len(ts) for ts in targets_of.values())
    pending: dict[cf.Future[Any], tuple[str, str | None]] = {}

    with progress_bar("builds, conversions, checks", total=total) as advance:
        def submit_target(v: str, t: str) -> None:
            pending[ex.submit(_target_job, sw, v, {"path": "fp32.onnx"} if t in early[v] else built[v], t,
                              plans[v][t][0])] = (v, t)

        def targets_for(v: str) -> None:
            if "not_applicable" in built[v]:
                notes[v].append(f"{v}: {built[v]['not_applicable']}")
                dropped.add(v)
                for t in targets_of[v]:
                    rows.pop((v, t), None)
                    if t not in early[v]:
                        advance()
                return
            for t in targets_of[v]:
                if t not in early[v]:
                    submit_target(v, t)

        def drain() -> None:
            while pending:
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    v, t = pending.pop(fut)
                    result = _merge(store, fut.result())
                    if ex.parallel:
                        status(f"  {v}{'@' + t if t else ''}: ran {', '.join(result['ran']) or 'nothing'}"
                               + (f"; reused {', '.join(result['reused'])}" if result["reused"] else ""))
                    advance()
                    if t is None:
                        built[v] = result["built"]
                        targets_for(v)
                    elif result["row"].get("status") == "not_applicable":  # the target cannot take this file
                        notes[v].append(f"{v}@{t}: {result['row']['gate']['why']}")
                    elif v not in dropped:
                        rows[(v, t)] = result["row"]

        timed = [v for v in needs_build if get_variant(v).timed]
        # the longest jobs first (so no slot is left with one at the end): builds that train, then
        # the target-side conversions, then the other builds
        later = [v for v in needs_build if v not in timed and not get_variant(v).trains]
        for v in needs_build:
            if v not in timed and v not in later:
                fut = started.pop(v) if v in started else ex.submit(_build_job, sw, v)
                pending[fut] = (v, None)
        # of those, a target's own quantizer (it calibrates, maybe searches) before plain conversions
        cells = [(v, t) for v in wanted for t in early[v]]
        for v, t in sorted(cells, key=lambda cell: plans[cell[0]][cell[1]][0][1] in FLOAT_PRECISIONS):
            submit_target(v, t)
        for v in later:
            pending[ex.submit(_build_job, sw, v)] = (v, None)
        for v in wanted:
            if v in built:
                targets_for(v)
        drain()
        # builds that time candidates last, each alone (nothing else runs by then, so none waits), then
        # their conversions and checks
        for v in timed:
            built[v] = _merge(store, ex.alone(_build_job, sw, v))["built"]
            advance()
            targets_for(v)
        drain()
    for v in r.variants:
        skipped.extend(notes[v])
    return [rows[(v, t)] for v in wanted for t in targets_of[v] if (v, t) in rows]


def _latency_details(row: dict[str, Any], res: dict[str, Any]) -> None:
    """What the report shows of a benchmark beyond its percentiles: the median's uncertainty, spread
    and outliers, the distribution (101 percentiles), CPU time and instructions per inference."""
    st = res.get("stats")
    if st:
        row["latency_stats"] = {"ci_rel": st.get("ci_rel"), "cv": st.get("cv"), "converged": st.get("converged"),
                                "stop": st.get("stop"), "outlier_fraction": st.get("outliers", {}).get("fraction"),
                                "repetitions": res.get("repetitions")}
    if res.get("times_ms"):
        from edgeship.bench.stats import quantiles

        row["latency_quantiles_ms"] = quantiles(res["times_ms"])
    if "cpu_ms_per_inference" in res:
        row["cpu_ms_per_inference"] = res["cpu_ms_per_inference"]
    if "instructions" in res:
        row["instructions_per_inference"] = res["instructions"].get("per_inference")


# -- steps -------------------------------------------------------------------------------------------
def _export(source: Any, out: Path, r: OptimizeRecipe) -> dict[str, Any]:
    if isinstance(source, Model):
        # loaded and saved, not copied: external weight data comes along (inline under 2 GB), and
        # --shape fixes symbolic input dims here, once, for every step after
        from edgeship.core import onnx_file

        proto = onnx_file.load(source.path, check=False)
        if r.shapes:
            proto = onnx_file.with_fixed_dims(proto, r.shapes)
        onnx_file.save(proto, out)
        source.derive(out, "copy", {"shapes": dict(r.shapes)} if r.shapes else {}, io=onnx_file.io_spec(proto),
                      facts=source.facts).save()
        return {"from": str(source.path), "exporter": "copy", **({"shapes": dict(r.shapes)} if r.shapes else {})}
    from edgeship.export.config import ExportConfig
    from edgeship.export.exporter import export

    try:
        model = export(source, out, ExportConfig.from_dict(dict(r.export)))
    except GateFailed as exc:  # parity failed: the file is kept and the check step will judge it
        return {"parity_failed": str(exc)}
    if source.extra.get("dim_max"):  # bounds of dynamic dims (a text model's positions), for converters
        model = model.with_facts(dim_max=dict(source.extra["dim_max"])).save()
    return {"exporter": model.facts.get("exporter"), "opset": model.facts.get("opset"),
            "parity": model.facts.get("parity")}


def _golden(reference: Any, fp32: Model, data: str, limit: int | None, out: Path, task: str,
            gates: tuple[str, ...]) -> dict[str, Any]:
    from edgeship.check.comparator import reference_probe_outputs, run_all
    from edgeship.core.golden import save_golden
    from edgeship.sources.subject import Subject, resolve_subject
    from edgeship.targets.base import runner_for_subject

    subj: Subject = resolve_subject(reference)
    io = fp32.io if isinstance(reference, Model) else subj.io
    ds = load_data(data, io, limit=limit, tokenizer=subj.tokenizer)
    if subj.source is not None:
        # One intra-op thread: eager PyTorch on per-sample inputs gains little from more, and with two
        # spinning OpenMP threads on two busy cores it can run 20x slower.
        import torch

        before = torch.get_num_threads()
        try:
            outputs = run_all(runner_for_subject(subj, threads=1), ds.samples)
            # the stress probes go into the golden file: every check of a variant (and the device's
            # health check) judges them beside the held-out data
            probes, probe_note = reference_probe_outputs(subj, io, threads=1)
        finally:
            torch.set_num_threads(before)
    else:
        outputs = run_all(runner_for_subject(subj), ds.samples)
        probes, probe_note = reference_probe_outputs(subj, io)
    # Golden outputs carry the ONNX model's output names so any variant matches them by name.
    names = fp32.io.output_names
    if list(outputs[0]) != names and len(outputs[0]) == len(names):
        outputs = [dict(zip(names, o.values(), strict=True)) for o in outputs]
        if probes is not None:
            probes.outputs = [dict(zip(names, o.values(), strict=True)) for o in probes.outputs]
    n = len(ds.samples)
    save_golden(out, ds.samples, outputs, ds.labels,
                {"reference": subj.name, "data": data, "task": task, "gates": list(gates),
                 "sample_ids": ds.sample_ids()}, probes=probes)
    kinds = probes.kinds if probes is not None else []
    return {"samples": n, "rows": ds.rows, "reference": subj.name,
            "probes": {"probes": len(kinds), "kinds": {k: kinds.count(k) for k in dict.fromkeys(kinds)},
                       **({"note": probe_note} if probe_note else {})},
            "distribution": ds.info.get("distribution")}


def _load_split(spec: str | None, io: IOSpec, what: str, limit: int | None = None,
                tokenizer: Any = None) -> Dataset:
    if spec is None:
        field = "calib" if what == "calibration" else "data"
        raise BadInput(f"this variant needs {what} data; give it in the recipe ({field}: ...) or with --{field}")
    return load_data(spec, io, limit=limit, tokenizer=tokenizer)


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
        return ("variant" if precision == "fp32" or tprec in AS_BUILT else "fp32", tprec), ""
    if "torch" in target.formats and is_torch and vname in ("fp32", *TARGET_PRECISION):
        return ("torch", tprec), ""
    return ("", ""), f"{tname} converts only from {', '.join(target.formats)} sources"


def _variant_on_target(store: RunStore, r: OptimizeRecipe, run_dir: Path, vname: str, precision: str,
                       built: dict[str, Any], tname: str, how: tuple[str, str], source: Any, golden: Path,
                       eval_spec: str, calib_spec: str | None, seq: int | None, bench: bool = True) -> dict[str, Any]:
    """The row of ``vname`` on ``tname``: converted, checked and (``bench``) benchmarked."""
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
        if "not_applicable" in conv:
            row["status"], row["gate"]["why"] = "not_applicable", conv["not_applicable"]
            return row
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
    if target.availability().runs_here:  # what this CPU runs the row's arithmetic on (AMX, VNNI, BF16, ...)
        from edgeship.targets.cpu import cpu_info

        row["instructions"] = cpu_info().describe(row["precision"])
    sha = file_sha256(path)
    chk = store.step(f"check-{vname}-{tname}", {"model": sha, "golden": file_sha256(golden), "runtime": tname,
                                                "precision": precision},
                     functools.partial(_check, golden, path, tname, r.threads or job_threads(), precision))
    row["metrics"] = {k: v for k, v in chk.get("summary", {}).items() if k != "nonfinite"}
    row["per_output"] = chk.get("outputs", {})
    row["gate"] = {"passed": chk["status"] == "pass", "why": chk.get("why", ""), "gates": chk.get("gates", []),
                   "marginal": chk.get("marginal", []) + (chk.get("probes") or {}).get("marginal", [])}
    row["n"] = chk.get("rows")
    row["stats"] = chk.get("stats", {})
    if chk.get("probes"):
        row["probes"] = chk["probes"]
    row["tightest"] = chk.get("tightest", [])
    if chk.get("first_divergence"):
        row["first_divergence"] = chk["first_divergence"]
    row["status"] = chk["status"]
    if chk["status"] in ("not_run", "error") or not bench:
        return row
    return _bench_row(store, r, run_dir, row, eval_spec, seq)


def _bench_row(store: RunStore, r: OptimizeRecipe, run_dir: Path, row: dict[str, Any], eval_spec: str,
               seq: int | None, tokenizer: Any = None) -> dict[str, Any]:
    """Benchmark a checked row's file on its target; fills the row's latency fields. ``tokenizer``
    (the source's) tokenises text data the way the model was: a file alone would get the default one."""
    vname, tname = row["id"].split("@", 1)
    path = run_dir / row["path"]
    data: Any = eval_spec
    if tokenizer is not None and eval_spec.startswith("data:"):
        data = load_data(eval_spec, Model.open(run_dir / "fp32.onnx").io, limit=64, tokenizer=tokenizer)
    res = store.step(f"bench-{vname}-{tname}", _bench_key(r, seq, tname, file_sha256(path)),
                     functools.partial(_bench, str(path), data, r, seq, tname))
    row["latency_ms"] = res.get("latency_ms")
    _latency_details(row, res)
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
                 if calib_spec and precision.startswith(("int", "fp16")) else None)  # fp16: to find what breaks
        from edgeship.targets.convert import SEARCHED_PRECISIONS

        extra = {}
        if getattr(target, "selects_int8", False) and precision in SEARCHED_PRECISIONS and calib_spec \
                and source is None:
            selector = _int8_selector(model, calib_spec, calib, run_dir / "golden.npz", tokenizer)
            extra = {"selector": selector} if selector is not None else {}
        converted = target.convert(source if source is not None else model, out, precision=precision, calib=calib,
                                   **extra)
    except NotRunnableHere as exc:
        return {"not_run": str(exc)}
    except NotApplicable as exc:
        return {"not_applicable": str(exc)}
    except EdgeshipError as exc:
        return {"error": str(exc)}
    # what the target measured about its file (tensor arena, layout, delegated ops) goes in the report
    kept = ("arena_bytes", "input_layout", "delegated_ops", "portable_ops", "inference_precision", "nncf",
            "quantization", "activation_group_size")
    return {"path": str(converted.path.relative_to(run_dir)),
            "facts": {k: v for k, v in converted.facts.items() if k in kept}}


def _int8_selector(fp32: Model, calib_spec: str, calib: Dataset | None, golden: Path, tokenizer: Any) -> Any:
    """A selector for a target's own INT8 search (OpenVINO's NNCF settings): the calibration
    source's select split and the run's gates (from the golden file), or None without either."""
    from edgeship.check.selection import int8_selector
    from edgeship.core.data import sibling_split
    from edgeship.core.golden import load_golden

    select = sibling_split(calib_spec, "select")
    gates = load_golden(golden)[3].get("gates") if golden.is_file() else None
    if select is None or not gates:
        return None
    return int8_selector(fp32, load_data(select, fp32.io, tokenizer=tokenizer), gates, calib=calib)


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


def _bench(model: str, data: str | Dataset, r: OptimizeRecipe, seq: int | None, runtime: str | None,
           ) -> dict[str, Any]:
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
    """Mark the fastest passing variant per target, preferring a clear pass: a variant that meets a
    gate by less than its noise margin (marginal) is chosen only when no variant passes clearly."""
    by_target: dict[str, dict[str, Any]] = {}

    def rank(row: dict[str, Any]) -> tuple[bool, float]:
        return bool(row["gate"].get("marginal")), row["latency_ms"]["p50"]

    for row in rows:
        if row["gate"]["passed"] and row.get("latency_ms"):
            best = by_target.get(row["target"])
            if best is None or rank(row) < rank(best):
                by_target[row["target"]] = row
    for row in by_target.values():
        row["chosen"] = True
        if row["gate"].get("marginal"):
            row["chosen_why"] = "no variant passes clearly on this target; the fastest marginal pass is chosen"
        elif any(r["target"] == row["target"] and r["gate"]["passed"] and r.get("latency_ms") and
                 r["latency_ms"]["p50"] < row["latency_ms"]["p50"] for r in rows):
            row["chosen_why"] = "the fastest clear pass; faster variants pass only marginally"


def _ratios(row: dict[str, Any], fp32_row: dict[str, Any] | None, baseline: dict[str, Any] | None) -> None:
    lat = (row.get("latency_ms") or {}).get("p50")
    if lat and fp32_row:
        row["speedup_vs_ort_fp32"] = fp32_row["latency_ms"]["p50"] / lat
    if lat and baseline and baseline.get("latency_ms"):
        row["speedup_vs_pytorch"] = baseline["latency_ms"]["p50"] / lat
    if row.get("size_bytes") and fp32_row and fp32_row.get("size_bytes"):
        row["size_ratio"] = row["size_bytes"] / fp32_row["size_bytes"]
