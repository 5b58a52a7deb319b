"""Accuracy-aware mixed precision: quantize, find the nodes that break the gate, keep those in FP32.

The search, per candidate base config (dynamic INT8, dynamic INT8 with SmoothQuant-style smoothing,
static QDQ INT8, ...):

1. quantize everything and measure the gate metrics on held-out selection data (never the data
   the ranges were calibrated on: the calibration source's ``select`` split, else a part of the
   calibration data kept out of it) and on the selection probes (``check/probes.py`` with its
   selection seed: a set disjoint from the probes ``edgeship check`` judges by); a candidate that
   passes both needs no FP32 node at all;
2. otherwise rank its quantizable nodes by sensitivity, measured two ways on a few calibration
   samples (short ones included: they are the worst cases of INT8 encoders):
   - *alone*: the output error when only that node is quantized;
   - *propagated*: layer by layer in the fully quantized model, how much error the node adds to
     what reaches it (error at its output minus error at its input);
3. keep the top-ranked nodes in FP32 one more at a time until the gates pass with ``margin`` to
   spare (a selection that passes exactly on its own data fails on new data), within the budget.

The fastest passing candidate (latency measured here, interleaved) is the result. With
verification data (``quantize(..., verify_data=...)``: held out of calibration and selection
alike) the chosen candidate must also pass it and the check's own probes under the plain gates;
a candidate that does not is rejected and the next passing one is verified (verification only
rejects, it never steers which nodes stay FP32). Its facts say which nodes stayed FP32, why (their
sensitivity), what they cost (size and latency measured against the same candidate fully
quantized, apportioned to nodes by their weight size), and every trial the search made.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.check.gates import slack as gate_slack
from edgeship.check.gates import tightened
from edgeship.compress.quantize import graph
from edgeship.compress.quantize.api import QuantContext, quantizer_for, register_quantizer
from edgeship.compress.quantize.configs import (
    Int8DynamicConfig,
    Int8StaticConfig,
    MixedConfig,
    QuantConfig,
    default_candidates,
)
from edgeship.core.errors import BadInput, InternalError

# static INT8 calibrations the search tries on conv-heavy graphs (default candidates only)
CONV_CALIBRATIONS = ("minmax", "percentile")

Feeds = dict[str, np.ndarray]


# -- gates and metrics -----------------------------------------------------------------------------------
def judged(refs: list[dict[str, np.ndarray]], cands: list[dict[str, np.ndarray]], gates: list[Any],
           labels: np.ndarray | None = None) -> Any:
    """The check engine's verdict on candidate outputs (worst case over outputs in ``.summary``)."""
    from edgeship.check.judge import judge

    return judge(refs, cands, gates, labels=labels, name="trial")


def _pick_sensitivity_feeds(samples: list[Feeds], n: int) -> list[Feeds]:
    """Half the smallest samples (short sentences are the worst cases), half spread over the rest."""
    if len(samples) <= n:
        return list(samples)
    sizes = [sum(v.size for v in s.values()) for s in samples]
    order = sorted(range(len(samples)), key=lambda i: (sizes[i], i))
    picked = order[: n // 2]
    rest = [i for i in range(len(samples)) if i not in set(picked)]
    step = len(rest) / (n - len(picked))
    picked += [rest[int(j * step)] for j in range(n - len(picked))]
    return [samples[i] for i in sorted(picked)]


def _err(refs: list[dict[str, np.ndarray]], cands: list[dict[str, np.ndarray]]) -> float:
    """A scalar output error for ranking: 1 - cosine, the mean and the worst row weighted alike."""
    m = judged(refs, cands, []).summary
    return 0.5 * (1.0 - m["cosine_mean"]) + 0.5 * (1.0 - m["cosine_min"])


def relative_rms(snr_db: float) -> float:
    """sqrt(Σ err² / Σ ref²) from the engine's SNR over the same elements (0 for exact or all-zero outputs)."""
    from edgeship.check.metrics import SNR_CAP_DB

    return 0.0 if abs(snr_db) >= SNR_CAP_DB else 10 ** (-snr_db / 20)


def latency_ms(paths: list[Path], feed: Feeds, rounds: int = 5, runs: int = 20) -> list[float]:
    """Latency of several models (2 threads, like the targets) measured by edgeship.bench's interleaved
    rounds, so that load from other processes affects them alike; each model's figure is the best over
    rounds of the per-round 20th percentile (on a busy machine the uncontended runs measure the model)."""
    import contextlib
    import functools

    from edgeship.bench.timing import interleaved
    from edgeship.targets.onnxruntime.runner import OrtRunner

    with contextlib.ExitStack() as stack:
        runners = [stack.enter_context(OrtRunner(p, threads=2, load_error=InternalError)) for p in paths]
        best = interleaved({str(i): functools.partial(r.infer, feed) for i, r in enumerate(runners)},
                           rounds=rounds, runs=runs, warmup=3, quantile=20)
    return [best[str(i)] for i in range(len(paths))]


def integer_tensors(model: Any) -> set[str]:
    """Tensors known to hold integers (integer graph inputs, Casts to non-float types): token ids
    feeding a fused embedding node. They cannot be exposed as float outputs to measure errors."""
    floats = (1, 10, 11, 16)  # float, float16, double, bfloat16
    ints = {i.name for i in model.graph.input if i.type.tensor_type.elem_type not in floats}
    for n in model.graph.node:
        if n.op_type == "Cast" and any(a.name == "to" and a.i not in floats for a in n.attribute):
            ints.update(n.output)
    return ints


# -- the search ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Trial:
    config: QuantConfig
    path: Path
    metrics: dict[str, Any]  # the worst of the selection data and the selection probes
    passed: bool  # tightened gates on the selection data and the selection probes
    why: str
    kept_fp32: tuple[str, ...] = ()

    def slack(self, gates: list[Any]) -> float:
        """Worst normalised distance to a gate (positive: passes with room)."""
        return gate_slack(gates, self.metrics)


class Search:
    def __init__(self, src: Path, cfg: MixedConfig, ctx: QuantContext) -> None:
        self.src, self.cfg, self.ctx = src, cfg, ctx
        self.deadline = time.monotonic() + cfg.time_budget_s
        self.gates = tightened(cfg.gates, 0.0)
        self.search_gates = tightened(cfg.gates, cfg.margin)
        self.n = 0
        self.log: list[dict[str, Any]] = []
        self._split_data()

    # data: calibration part, selection part (held out), selection probes, sensitivity feeds
    def _split_data(self) -> None:
        from edgeship.check.probes import SELECT_SEED, build_probes
        from edgeship.core.artifact import Model
        from edgeship.core.data import load_data, sibling_split

        ctx, cfg = self.ctx, self.cfg
        pool = ctx.calib.samples
        io = Model.open(self.src).io
        sibling = sibling_split(ctx.calib.name, "select") if ctx.eval_data is None else None
        if ctx.eval_data is None and sibling is not None:
            ctx.eval_data = load_data(sibling, io)
        if ctx.eval_data is not None:
            calib, select = pool, ctx.eval_data.samples
            self.select_labels = ctx.eval_data.labels
            self.select_source = f"{'the selection split ' if sibling else 'eval data '}{ctx.eval_data.name}"
            self.select_ids = ctx.eval_data.sample_ids()
        else:
            # 1 in k samples, stratified by size so that both parts get short and long inputs
            k = max(2, round(1 / cfg.holdout_fraction))
            by_size = sorted(range(len(pool)), key=lambda i: (sum(v.size for v in pool[i].values()), i))
            held = set(by_size[k - 1::k])
            select = [s for i, s in enumerate(pool) if i in held]
            calib = [s for i, s in enumerate(pool) if i not in held]
            self.select_labels = None
            self.select_source = f"1 in {k} samples of {ctx.calib.name} (stratified by length), held out of calibration"
            self.select_ids = [f"#{i}" for i in sorted(held)]
        from edgeship.compress.quantize.configs import MIN_CALIB_SAMPLES

        if len(calib) < MIN_CALIB_SAMPLES or len(select) < 2:
            raise BadInput(f"mixed: {len(pool)} calibration samples leave too few to calibrate ({len(calib)}) and to "
                           f"select on ({len(select)}); give at least {2 * MIN_CALIB_SAMPLES + 2} or pass eval data")
        calib = calib[: cfg.calib_samples]
        ctx.calib = dataclasses.replace(ctx.calib, samples=calib, labels=None, ids=None)
        self.select = select
        self.select_ref = ctx.reference or graph.run_outputs(self.src, select)
        self.io = io
        self.probes = build_probes(io, calib=ctx.calib, seed=SELECT_SEED) if cfg.probes else None
        self.probe_ref: list[Feeds] = []
        self.probe_note = ""
        if self.probes:
            try:
                self.probe_ref = graph.run_outputs(self.src, self.probes.samples)
            except Exception as exc:
                self.probe_note = f"selection probes skipped: the FP32 model cannot run them ({str(exc)[:160]})"
                self.probes = None
                ctx.say(self.probe_note)
        self.sens = _pick_sensitivity_feeds(calib, cfg.sensitivity_samples)
        if self.probes:  # the shortest probes rank the nodes that break short inputs
            shortest = sorted(self.probes.samples, key=lambda f: sum(v.size for v in f.values()))
            self.sens = self.sens + shortest[: max(1, cfg.sensitivity_samples // 3)]
        self.sens_ref = graph.run_outputs(self.src, self.sens)

    def judge_trial(self, path: Path, gates: list[Any]) -> tuple[Any, Any | None]:
        """The verdicts on the selection data and on the selection probes (None without probes)."""
        verdict = judged(self.select_ref, graph.run_outputs(path, self.select), gates, self.select_labels)
        probes = None
        if self.probes:
            probe_gates = [g for g in gates if "accuracy" not in g.metric]  # probes have no labels
            probes = judged(self.probe_ref, graph.run_outputs(path, self.probes.samples), probe_gates)
        return verdict, probes

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def quantize(self, config: QuantConfig) -> Path:
        self.n += 1
        out = self.ctx.tmp(f"trial-{self.n}.onnx")
        q = quantizer_for(config)
        facts = q.fn(self.src, config, self.ctx, out)
        self.last_facts = facts
        return out

    def trial(self, config: QuantConfig, kept: tuple[str, ...] = ()) -> Trial:
        from edgeship.check.metrics import worst_case

        path = self.quantize(config.excluding(kept) if kept else config)
        verdict, probes = self.judge_trial(path, self.search_gates)
        m = worst_case({"select": verdict.summary, **({"probes": probes.summary} if probes else {})})
        passed = verdict.passed and (probes is None or probes.passed)
        why = verdict.why if probes is None or probes.passed else f"probes: {probes.why}; selection: {verdict.why}"
        t = Trial(config, path, m, passed, why, kept)
        keys = ("cosine_mean", "cosine_min", "top1_agreement_confident", "top5_agreement", "top1_agreement",
                "accuracy_drop")
        self.log.append({"base": _label(config), "kept_fp32": len(kept), "passed": passed,
                         "selection": {k: verdict.summary[k] for k in keys if k in verdict.summary},
                         "probes": {k: probes.summary[k] for k in keys if k in probes.summary} if probes else None})
        self.ctx.say(f"{_label(config)} with {len(kept)} FP32 node(s): {why}")
        return t

    def verify(self, trial: Trial) -> dict[str, Any]:
        """The plain gates on the verification data and the check's own probes (not the selection ones)."""
        from edgeship.check.probes import CHECK_SEED, build_probes

        data = self.ctx.verify
        assert data is not None
        ref = graph.run_outputs(self.src, data.samples)
        verdict = judged(ref, graph.run_outputs(trial.path, data.samples), self.gates, data.labels)
        out: dict[str, Any] = {"base": _label(trial.config), "fp32_nodes": len(trial.kept_fp32), "data": data.name,
                               "samples": len(data), "passed": verdict.passed, "why": verdict.why,
                               "metrics": {k: v for k, v in verdict.summary.items() if isinstance(v, int | float)}}
        if self.probes is not None:  # the selection probes ran on this model: the check's will too
            probes = build_probes(self.io, calib=self.ctx.calib, seed=CHECK_SEED)
            pv = judged(graph.run_outputs(self.src, probes.samples), graph.run_outputs(trial.path, probes.samples),
                        [g for g in self.gates if "accuracy" not in g.metric])
            out["probes"] = {"passed": pv.passed, "why": pv.why, "rows": pv.rows,
                             "worst": {m: st.get("worst_row") for m, st in pv.stats.items() if "worst_row" in st}}
            out["passed"] = out["passed"] and pv.passed
            if not pv.passed:
                out["why"] = f"probes: {pv.why}; data: {verdict.why}"
        self.ctx.say(f"verify {out['base']} with {out['fp32_nodes']} FP32 node(s) on {data.name}: "
                     f"{'pass' if out['passed'] else 'FAIL'} ({out['why']})")
        return out

    # sensitivity
    def sensitivity(self, config: QuantConfig, full: Trial) -> list[dict[str, Any]]:
        """Per quantizable node: alone error (output) and propagated/local error (layer-wise)."""
        import onnx

        pre = Path(self.last_prepared(config))
        model = onnx.load(str(pre))
        nodes = graph.weighted_nodes(model)
        names = [n.name for n in nodes]
        weight = {n.name: graph.node_weight_bytes(model, n) for n in nodes}
        local, prop = self._layerwise(pre, full.path, nodes)
        rows = []
        budget_alone = self.time_left() * 0.5  # keep half the budget for the greedy search itself
        t0 = time.monotonic()
        for i, name in enumerate(names):
            alone = None
            if time.monotonic() - t0 < budget_alone:
                others = tuple(n for n in names if n != name)
                path = self.quantize(config.excluding(others))
                alone = _err(self.sens_ref, graph.run_outputs(path, self.sens))
                path.unlink(missing_ok=True)
            rows.append({"node": name, "op": nodes[i].op_type, "alone_err": alone, "local_err": local.get(name),
                         "propagated_err": prop.get(name), "fp32_weight_bytes": weight[name]})
        # rank: alone error where measured, local error to order the rest (and break ties)
        rows.sort(key=lambda r: (-(r["alone_err"] if r["alone_err"] is not None else -1.0),
                                 -(r["local_err"] or 0.0)))
        return rows

    def last_prepared(self, config: QuantConfig) -> str:
        """The float graph the quantizer started from (prepared, maybe smoothed), from the cache."""
        for key, value in reversed(list(self.ctx.cache.items())):
            if key[0] == "smoothed" and isinstance(config, Int8DynamicConfig) and config.smooth_alpha is not None \
                    and key[2:] == (config.smooth_alpha, config.smooth_min_outlier_ratio):
                return str(value[0])
        for key, value in reversed(list(self.ctx.cache.items())):
            if key[0] == "prepared":
                from edgeship.compress.quantize.prepare import wants_fusion

                if key[2] == wants_fusion(getattr(config, "optimize", "auto"), isinstance(config, Int8DynamicConfig)):
                    return str(value[0])
        return str(self.src)

    def _layerwise(self, float_path: Path, quant_path: Path, nodes: list[Any]
                   ) -> tuple[dict[str, float], dict[str, float]]:
        """Relative error at each node's output in the fully quantized graph (propagated) and what the
        node adds to the error at its input (local). Tensor names survive ORT's quantizers."""
        import onnx

        tensors = sorted({t for n in nodes for t in (n.input[0], n.output[0])})
        exposed = []
        for path in (float_path, quant_path):
            m = onnx.load(str(path))
            # node outputs only: a graph input is the same in both graphs (no error at it)
            have = {v for n in m.graph.node for v in n.output}
            exposed.append({t for t in tensors if t in have} - integer_tensors(m))
        common = sorted(exposed[0] & exposed[1])
        if not common:
            return {}, {}
        ref, cand = (graph.run_outputs(path, self.sens, outputs=common, optimize=False, expose=common)
                     for path in (float_path, quant_path))
        per_tensor = judged(ref, cand, []).outputs
        err = {t: relative_rms(per_tensor[t]["snr_db"]) for t in common}
        prop = {n.name: err[n.output[0]] for n in nodes if n.output[0] in err}
        local = {n.name: max(0.0, err[n.output[0]] - err.get(n.input[0], 0.0)) for n in nodes if n.output[0] in err}
        return local, prop

    def edges(self, config: QuantConfig) -> tuple[str, ...]:
        """The classic hand remedy: embeddings and the first and last weighted layers in FP32."""
        import onnx

        model = onnx.load(str(self.last_prepared(config)))
        nodes = graph.weighted_nodes(model)
        self.weights = {n.name: (n.op_type, graph.node_weight_bytes(model, n)) for n in nodes}
        emb = [n.name for n in nodes if n.op_type in ("Gather", "EmbedLayerNormalization")]
        layers = [n.name for n in nodes if n.op_type not in ("Gather", "EmbedLayerNormalization")]
        return tuple(dict.fromkeys(emb + layers[:1] + layers[-1:]))

    def remedy_rows(self, names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"node": n, "op": self.weights.get(n, ("", 0))[0], "alone_err": None, "local_err": None,
                 "propagated_err": None, "fp32_weight_bytes": self.weights.get(n, ("", 0))[1],
                 "remedy": "embeddings/first/last layers kept FP32"} for n in names]

    def within_size(self, ranking: list[dict[str, Any]], full: Trial) -> list[dict[str, Any]]:
        """The ranking without the nodes that would take the file past ``max_size_ratio`` of the FP32
        model's size (an FP32 weight costs about 3 bytes more than its INT8 copy); each node left
        out is marked with why."""
        limit = self.cfg.max_size_ratio
        if limit is None:
            return ranking
        from edgeship.core.artifact import Model

        room = limit * Model.open(self.src).size_bytes - full.path.stat().st_size
        out = []
        for r in ranking:
            cost = 0.75 * r["fp32_weight_bytes"]
            if cost > room:
                r["left_out"] = f"keeping it FP32 would pass max_size_ratio={limit:g}"
                continue
            room -= cost
            out.append(r)
        return out

    def greedy(self, config: QuantConfig, full: Trial) -> tuple[Trial, list[dict[str, Any]]]:
        best = full
        edges = self.edges(config)
        if self.cfg.try_edge_remedy and edges and len(edges) <= self.cfg.max_fp32_nodes:
            t = self.trial(config, edges)
            t.why = f"embeddings/first/last in FP32: {t.why}"
            if t.passed:
                return t, self.remedy_rows(edges)
            best = t if t.slack(self.search_gates) > best.slack(self.search_gates) else best
        ranking = self.sensitivity(config, full)
        if best.kept_fp32:  # the remedy trial is still the best: describe its nodes too
            ranking = ranking + self.remedy_rows(tuple(n for n in best.kept_fp32
                                                       if n not in {r["node"] for r in ranking}))
        order = self.within_size(ranking, full)
        for k in range(1, min(self.cfg.max_fp32_nodes, len(order)) + 1):
            if self.time_left() <= 0:
                self.ctx.say("mixed: time budget spent")
                break
            t = self.trial(config, tuple(r["node"] for r in order[:k]))
            if t.slack(self.search_gates) > best.slack(self.search_gates):
                best = t
            else:
                t.path.unlink(missing_ok=True)
            if t.passed:
                return t, ranking
        return best, ranking


def _label(c: QuantConfig) -> str:
    extra = ""
    if isinstance(c, Int8DynamicConfig) and c.smooth_alpha is not None:
        extra = f"+smooth{c.smooth_alpha:g}"
    if isinstance(c, Int8StaticConfig) and c.calibration != "minmax":
        extra = f"+{c.calibration}"
    return c.kind + extra


@register_quantizer(MixedConfig)
def mixed(src: Path, cfg: MixedConfig, ctx: QuantContext, out: Path) -> dict[str, Any]:
    from edgeship.check.gates import evaluate_gates

    t_start = time.monotonic()
    search = Search(src, cfg, ctx)
    # 1. every candidate, whole
    import onnx

    whole: list[Trial] = []
    # dynamic INT8 of a conv-heavy graph is slower than FP32: not a candidate worth a trial
    heavy = graph.conv_heavy(onnx.load(str(src), load_external_data=False))
    candidates = [c for c in cfg.candidates if not (heavy and isinstance(c, Int8DynamicConfig))] or list(cfg.candidates)
    skipped = [{"base": _label(c), "why": f"skipped: {heavy}"} for c in cfg.candidates if c not in candidates]
    if heavy and cfg.candidates == default_candidates():
        # in place of the dynamic candidates, the calibration methods: neither wins everywhere (on
        # EfficientNet-Lite0, with bias correction, minmax ranges flipped a confident test crop that
        # percentile ranges kept; percentile, calibrated on more samples, flipped two selection crops)
        candidates += [c.replace(calibration=m) for c in list(candidates) if isinstance(c, Int8StaticConfig)
                       for m in CONV_CALIBRATIONS if m != c.calibration]
    for c in candidates:
        if search.time_left() <= 0 and whole:
            break
        whole.append(search.trial(c))
    whole.sort(key=lambda t: -t.slack(search.search_gates))
    feed = max(search.select, key=lambda s: sum(v.size for v in s.values()))
    # A failing candidate is worth searching only if, whole, it is faster than the fastest one that
    # already passes: FP32 nodes only add time.
    whole_lat = dict(zip([t.path for t in whole], latency_ms([t.path for t in whole], feed, rounds=3, runs=10),
                         strict=True))
    best_passing = min((whole_lat[t.path] for t in whole if t.passed), default=float("inf"))
    # 2. candidates that fail get FP32 nodes, most promising first, while time is left
    results: list[tuple[Trial, Trial, list[dict[str, Any]]]] = [(t, t, []) for t in whole if t.passed]
    for t in whole:
        if t.passed:
            continue
        if sum(1 for r in results if r[0].passed) >= 2 and search.time_left() < cfg.time_budget_s / 2:
            results.append((t, t, []))  # two passing variants and half the budget gone: enough
        elif whole_lat[t.path] >= 0.97 * best_passing:
            t.why += " (not searched: slower whole than a passing candidate)"
            results.append((t, t, []))
        elif search.time_left() > 0 and cfg.max_fp32_nodes > 0:
            final, ranking = search.greedy(t.config, t)
            results.append((final, t, ranking))
        else:
            results.append((t, t, []))
    passing = [r for r in results if r[0].passed]
    # 3. the fastest passing candidate (or, if none passes, the closest one)
    timed = passing if passing else [max(results, key=lambda r: r[0].slack(search.search_gates))]
    paths = [r[0].path for r in timed] + [r[1].path for r in timed if r[1] is not r[0]]
    lat = dict(zip(paths, latency_ms(paths, feed), strict=True))
    # Within 5% of the fastest (timing noise on a shared machine is of that order), the more
    # accurate one wins.
    fastest = min(lat[r[0].path] for r in timed)
    close = [r for r in timed if lat[r[0].path] <= 1.05 * fastest]
    chosen = max(close, key=lambda r: r[0].slack(search.gates))
    verification: list[dict[str, Any]] = []
    if ctx.verify is not None and passing:
        # the preferred one first, then the other passing candidates from the fastest
        order = [chosen, *sorted((r for r in timed if r is not chosen), key=lambda r: lat[r[0].path])]
        for r in order:
            verification.append(search.verify(r[0]))
            if verification[-1]["passed"]:
                chosen = r
                break
    final, full, ranking = chosen
    shutil.copyfile(final.path, out)
    passed, why = evaluate_gates(search.gates, final.metrics)
    if verification and not verification[-1]["passed"]:
        passed, why = False, f"no passing candidate held on the verification data: {verification[-1]['why']}"
    # 4. the cost of the FP32 nodes, measured against the same candidate fully quantized
    cost: dict[str, Any] = {}
    if final.kept_fp32:
        size_delta = final.path.stat().st_size - full.path.stat().st_size
        lat_delta = lat[final.path] - lat[full.path]
        by_name = {r["node"]: r for r in ranking}
        wsum = sum(by_name[n]["fp32_weight_bytes"] for n in final.kept_fp32) or 1
        cost = {"size_bytes": size_delta, "latency_ms": round(lat_delta, 4),
                "latency_note": "measured total; per node apportioned by weight size"}
        kept = []
        for n in final.kept_fp32:
            r = by_name[n]
            share = r["fp32_weight_bytes"] / wsum
            kept.append({**r, "why": _why(r), "size_cost_bytes": round(size_delta * share),
                         "latency_cost_ms": round(lat_delta * share, 4)})
    else:
        kept = []
    return {
        "base": final.config.to_dict(),
        "base_label": _label(final.config),
        "nodes_kept_fp32": list(final.kept_fp32),
        "kept_fp32": kept,
        "fp32_cost": cost,
        # passed within the margin it searched with, or only by the plain gates (a marginal selection)
        "gate": {"passed": passed, "why": why, "gates": list(cfg.gates), "margin": cfg.margin,
                 "margin_met": bool(evaluate_gates(search.search_gates, final.metrics)[0]),
                 "searched_with": [str(g) for g in search.search_gates], "data": search.select_source,
                 "samples": len(search.select), "selection_probes": len(search.probes) if search.probes else 0,
                 "probe_note": search.probe_note or None,
                 "verified": verification[-1] if verification else None},
        "verification": verification,
        "skipped_candidates": skipped,
        "trial_log": search.log,
        "metrics": {k: v for k, v in final.metrics.items() if isinstance(v, int | float)},
        "latency_ms_b1": round(lat[final.path], 4),
        "candidates": [{"base": _label(r[0].config), "passed": r[0].passed, "fp32_nodes": len(r[0].kept_fp32),
                        "whole": {"cosine_mean": r[1].metrics.get("cosine_mean"),
                                  "cosine_min": r[1].metrics.get("cosine_min"), "why": r[1].why},
                        "final_why": r[0].why, "latency_ms_b1": round(lat[r[0].path], 4) if r[0].path in lat else None}
                       for r in results],
        "sensitivity": ranking[:32],
        "trials": len(search.log),
        "search_time_s": round(time.monotonic() - t_start, 1),
    }


def _why(r: dict[str, Any]) -> str:
    parts = [r["remedy"]] if r.get("remedy") else []
    if r.get("alone_err") is not None:
        parts.append(f"quantized alone it costs {r['alone_err']:.2e} output error (1-cos)")
    if r.get("local_err") is not None:
        parts.append(f"adds {r['local_err']:.2e} relative error layer-wise")
    return "; ".join(parts) or "ranked by sensitivity"
