"""The device-side health check, run in its own process before a new model is activated.

``python -m edgeship.ship.healthcheck --model M --golden G.npz --gate cosine_min>=0.98 --latency-budget-ms 5``
loads the model with the runner for its format, runs the golden inputs, judges the outputs against
the golden outputs with edgeship's one comparison engine (``check.judge``: the gates given; NaN/Inf
always fail), runs the stress probes the golden file keeps (``check/probes.py``: judged by the
same gates; a failing probe makes the model unhealthy, ``--no-probes`` skips them) and checks the
latency budget (the median of the runs timed by ``bench.timing`` must
stay within it). It prints one JSON line and exits 0 (healthy),
1 (unhealthy: gate, latency or NaN/Inf) or 2 (cannot load or run). A model that crashes the process
(a segfault in a runtime) kills only this process: the agent sees the signal and rejects the model.

``--slot-dir DIR`` checks the model the device's pointer names, the way a serving process loads it
(the agent's "first inferences" after the switch).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeship.core.errors import EdgeshipError


@dataclasses.dataclass(frozen=True)
class HealthResult:
    """The verdict of one health check; printed as one JSON line (keys that are None are left out)."""

    healthy: bool
    why: str
    metrics: dict[str, float] | None = None  # worst case over outputs (check.judge's summary)
    latency_ms: dict[str, float | None] | None = None  # {"max", "median"} of the timed runs
    load_time_s: float | None = None
    first_pass_s: float | None = None  # all golden inputs once, right after loading
    samples: int | None = None
    probes: dict[str, Any] | None = None  # the probes' verdict: status, rows, summary, worst samples
    error: str | None = None  # the exception's type when the model could not be loaded or run

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def check_model(model_path: Path, golden: Path, gates: Sequence[str], latency_budget_ms: float | None,
                runtime: str | None = None, timed_runs: int = 10, probes: bool = True) -> HealthResult:
    """Run the health check in this process: the golden inputs through the runner of the model's
    format, the outputs judged against the golden outputs under ``gates`` (none: only NaN/Inf), the
    golden file's stress probes judged the same way (``probes``), then ``timed_runs`` timed runs
    whose median must stay within ``latency_budget_ms``."""
    from edgeship.bench.timing import time_calls
    from edgeship.check.judge import judge, resolve_gates, with_probes
    from edgeship.core.artifact import Model
    from edgeship.core.golden import load_golden, load_golden_probes
    from edgeship.targets.base import Feeds, runner_for

    gate_list = resolve_gates(list(gates))  # a malformed gate is bad input before anything runs
    inputs, refs, labels, meta = load_golden(golden)
    probe_set = load_golden_probes(golden) if probes else None
    if not inputs or not inputs[0]:
        return HealthResult(False, f"golden file {golden.name} has no inputs")
    model = Model.open(model_path)
    outs: list[Feeds] = []
    with runner_for(model, runtime) as runner:
        first = time_calls(lambda: outs.extend([runner.infer(feeds) for feeds in inputs]), min_reps=1, max_reps=1)
        probe_outs = [runner.infer(feeds) for feeds in probe_set.inputs] if probe_set is not None else []
        # Timed runs after the first pass (which warms caches), cycling through the golden inputs.
        samples = itertools.cycle(inputs)
        timed = time_calls(lambda: runner.infer(next(samples)), min_reps=timed_runs, max_reps=timed_runs) \
            if timed_runs > 0 else None  # none asked for (the first inferences after a switch)
        load_time_s = runner.load_time_s
    missing = [name for name in refs[0] if name not in outs[0]]
    if missing:
        return HealthResult(False, f"the model has no output {missing[0]!r} that the golden file has")
    # Labels (when the golden file has them) let gates such as accuracy_drop<=1 be checked.
    verdict = judge(refs, outs, gate_list, labels=labels, name=model_path.name, sample_ids=meta.get("sample_ids"))
    if verdict.status == "error":
        return HealthResult(False, verdict.why)
    if probe_set is not None:
        label_free = [g for g in gate_list if "accuracy" not in g.metric]  # probes have no labels
        with_probes(verdict, judge(probe_set.outputs, probe_outs, label_free, name=f"{model_path.name} (probes)",
                                   sample_ids=probe_set.ids), True, probe_set.kinds)
    passed, why = verdict.passed, verdict.why
    times = timed.times_ms if timed is not None else []
    median_ms = timed.median_ms if timed is not None and times else None
    # The median of the timed runs is held to the budget: a single run can be delayed by the
    # scheduler on a busy device, a model that is really too slow is slow every time.
    if passed and latency_budget_ms is not None and median_ms is not None and median_ms > latency_budget_ms:
        passed, why = False, f"latency {median_ms:.3f} ms (median) exceeds the budget of {latency_budget_ms:g} ms"
    return HealthResult(passed, why, metrics={k: v for k, v in verdict.summary.items() if isinstance(v, int | float)},
                        latency_ms={"max": max(times) if times else None, "median": median_ms},
                        load_time_s=load_time_s, first_pass_s=first.times_ms[0] / 1e3, samples=len(inputs),
                        probes=_probe_summary(verdict.probes))


def _probe_summary(probes: dict[str, Any] | None) -> dict[str, Any] | None:
    if probes is None:
        return None
    return {"status": probes["status"], "rows": probes["rows"], "why": probes["why"],
            "summary": {k: v for k, v in probes["summary"].items() if isinstance(v, int | float)},
            "worst_samples": probes["worst_samples"]}


def target_of_runtime(runtime: str | None) -> str | None:
    """The target whose report name (or name) is ``runtime``: the runner a health check uses."""
    from edgeship.targets.base import all_targets

    return next((t.name for t in all_targets() if runtime in (t.report_name, t.name)), None) if runtime else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edgeship.ship.healthcheck",
                                description="Health-check a model against golden outputs (used by the agent).")
    p.add_argument("--model", type=Path, help="model file to check")
    p.add_argument("--golden", type=Path, help="golden .npz (inputs and reference outputs)")
    p.add_argument("--slot-dir", type=Path, help="check the model the device's active pointer names instead")
    p.add_argument("--gate", action="append", default=[], help="gate such as cosine_min>=0.98 (repeatable)")
    p.add_argument("--latency-budget-ms", type=float, default=None, help="slowest timed run must stay under this")
    p.add_argument("--runtime", default=None, help="target name of the runtime (default: by the model's format)")
    p.add_argument("--timed-runs", type=int, default=10)
    p.add_argument("--no-probes", action="store_true", help="skip the stress probes the golden file keeps")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model, golden, gates, budget = args.model, args.golden, list(args.gate), args.latency_budget_ms
        if args.slot_dir:
            from edgeship.ship.slots import SlotDir

            sd = SlotDir(args.slot_dir)
            model = sd.active_model()
            manifest = sd.manifest(sd.active()["slot"]) or {}  # type: ignore[index]
            golden = model.parent / manifest.get("golden", "golden.npz")
            gates = gates or list(manifest.get("gates", []))
            budget = budget if budget is not None else manifest.get("latency_budget_ms")
            args.runtime = args.runtime or target_of_runtime(manifest.get("runtime"))
        if model is None or golden is None:
            print(json.dumps(HealthResult(False, "give --model and --golden, or --slot-dir").to_dict()))
            return 2
        result = check_model(Path(model), Path(golden), gates, budget, args.runtime, args.timed_runs,
                             probes=not args.no_probes)
    except EdgeshipError as exc:
        print(json.dumps(HealthResult(False, str(exc), error=type(exc).__name__).to_dict()))
        return 2
    print(json.dumps(result.to_dict(), default=float))
    return 0 if result.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
