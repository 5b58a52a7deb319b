"""The device-side health check, run in its own process before a new model is activated.

``python -m edgeship.ship.healthcheck --model M --golden G.npz --gate cosine_min>=0.98 --latency-budget-ms 5``
loads the model with the runner for its format, runs the golden inputs, compares the outputs with
the golden outputs through the check gates, looks for NaN/Inf and checks the latency budget (the
median of the timed runs must stay within it). It prints one JSON line and exits 0 (healthy),
1 (unhealthy: gate, latency or NaN/Inf) or 2 (cannot load or run). A model that crashes the process
(a segfault in a runtime) kills only this process: the agent sees the signal and rejects the model.

``--slot-dir DIR`` checks the model the device's pointer names, the way a serving process loads it
(the agent's "first inferences" after the switch).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from edgeship.core.errors import EdgeshipError


def check_model(model_path: Path, golden: Path, gates: list[str], latency_budget_ms: float | None,
                runtime: str | None = None, timed_runs: int = 10) -> dict[str, Any]:
    """Run the health check in this process; returns {"healthy", "why", "metrics", "latency_ms", ...}."""
    import numpy as np

    from edgeship.check.gates import evaluate_gates, parse_gates
    from edgeship.check.golden import load_golden
    from edgeship.check.metrics import output_metrics, worst_case
    from edgeship.core.artifact import Model
    from edgeship.targets.base import runner_for

    inputs, refs, labels, _ = load_golden(golden)
    if not inputs or not inputs[0]:
        return {"healthy": False, "why": f"golden file {golden.name} has no inputs"}
    model = Model.open(model_path)
    gate_list = parse_gates(gates)
    with runner_for(model, runtime) as runner:
        t0 = time.perf_counter()
        outs = [runner.infer(feeds) for feeds in inputs]
        first_pass_s = time.perf_counter() - t0
        # Timed runs after the first pass (which warms caches); the budget applies to the slowest.
        times = []
        for i in range(timed_runs):
            t = time.perf_counter()
            runner.infer(inputs[i % len(inputs)])
            times.append((time.perf_counter() - t) * 1e3)
        load_time_s = runner.load_time_s
    per_output: dict[str, dict[str, Any]] = {}
    nonfinite = 0
    for name in refs[0]:
        if name not in outs[0]:
            return {"healthy": False, "why": f"the model has no output {name!r} that the golden file has"}
        cand = [o[name] for o in outs]
        nonfinite += int(sum(int((~np.isfinite(np.asarray(c, dtype=np.float64))).sum()) for c in cand))
        try:
            # Labels (when the golden file has them) let gates such as accuracy_drop<=1 be checked.
            use_labels = labels if labels is not None and len(refs[0]) == 1 else None
            per_output[name] = output_metrics([r[name] for r in refs], cand, labels=use_labels)
        except ValueError as exc:
            return {"healthy": False, "why": f"output {name!r}: {exc}"}
    metrics = worst_case(per_output)
    metrics["nonfinite"] = nonfinite
    passed, why = evaluate_gates(gate_list, metrics) if gate_list else (nonfinite == 0, "no gates")
    if nonfinite and passed:
        passed, why = False, f"{nonfinite} NaN/Inf values in the outputs"
    worst_ms = max(times) if times else None
    median_ms = float(np.median(times)) if times else None
    # The median of the timed runs is held to the budget: a single run can be delayed by the
    # scheduler on a busy device, a model that is really too slow is slow every time.
    if passed and latency_budget_ms is not None and median_ms is not None and median_ms > latency_budget_ms:
        passed, why = False, f"latency {median_ms:.3f} ms (median) exceeds the budget of {latency_budget_ms:g} ms"
    return {"healthy": passed, "why": why, "metrics": {k: v for k, v in metrics.items()
                                                        if isinstance(v, int | float)},
            "latency_ms": {"max": worst_ms, "median": median_ms},
            "load_time_s": load_time_s, "first_pass_s": first_pass_s, "samples": len(inputs)}


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
        if model is None or golden is None:
            print(json.dumps({"healthy": False, "why": "give --model and --golden, or --slot-dir"}))
            return 2
        result = check_model(Path(model), Path(golden), gates, budget, args.runtime, args.timed_runs)
    except EdgeshipError as exc:
        print(json.dumps({"healthy": False, "why": str(exc), "error": type(exc).__name__}))
        return 2
    print(json.dumps(result, default=float))
    return 0 if result["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
