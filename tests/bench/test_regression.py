"""The regression gate: a statistical test on the ratio of medians, refusing unlike comparisons."""

import json

import numpy as np
import pytest

from edgeship.bench.regression import FASTER, INCONCLUSIVE, REGRESSION, SAME, compare, compare_all, parse_slowdown
from edgeship.bench.sysinfo import system_info
from edgeship.cli.main import main
from edgeship.core.errors import BadInput
from models.tiny import tiny_onnx


def _record(times, model="m.onnx", **over):
    times = [float(t) for t in times]
    rec = {"model": model, "runtime": "onnx", "batch": 1, "seq": None, "shapes": {"x": [1, 16]}, "threads": 2,
           "latency_ms": {"p50": float(np.median(times))}, "times_ms": times,
           "system": {**system_info(), "load_avg": [0.1, 0.1, 0.1]}}
    rec.update(over)
    return rec


def test_verdicts_follow_the_interval_not_the_point_estimate():
    rng = np.random.default_rng(0)
    base = _record(rng.normal(1.0, 0.02, 3000))
    assert compare(base, _record(rng.normal(1.0, 0.02, 3000)), 0.05).verdict == SAME
    slow = compare(base, _record(rng.normal(1.3, 0.02, 3000)), 0.05)
    assert slow.verdict == REGRESSION and slow.regressed and slow.ci95[0] > 1.05
    assert compare(base, _record(rng.normal(0.8, 0.02, 3000)), 0.05).verdict == FASTER
    # 7% slower by the point estimate, from 15 noisy samples: not shown to exceed 5%
    few = compare(_record(rng.normal(1.0, 0.3, 15)), _record(rng.normal(1.0, 0.3, 15) * 1.07 + 0.0), 0.05)
    assert few.verdict in (INCONCLUSIVE, SAME, FASTER) and not few.regressed


def test_unlike_results_are_refused():
    rng = np.random.default_rng(1)
    base = _record(rng.normal(1.0, 0.02, 100))
    with pytest.raises(BadInput, match=r"other settings.*threads"):
        compare(base, _record(rng.normal(1.0, 0.02, 100), threads=1))
    other = {**system_info(), "cpu": "Another CPU", "versions": {**system_info()["versions"], "onnxruntime": "0.1"},
             "fingerprint": "different"}
    with pytest.raises(BadInput, match=r"another system.*onnxruntime .* → 0\.1.*--allow-different-system"):
        compare(base, _record(rng.normal(1.0, 0.02, 100), system=other))
    told = compare(base, _record(rng.normal(1.0, 0.02, 100), system=other), allow_different_system=True)
    assert "cpu" in " ".join(told.system_differs)
    with pytest.raises(BadInput, match="no raw latencies"):
        compare({**base, "times_ms": []}, base)
    with pytest.raises(BadInput, match="as many models"):
        compare_all([base, base], [base])


def test_parse_slowdown():
    assert parse_slowdown("5%") == pytest.approx(0.05) and parse_slowdown("0.1") == pytest.approx(0.1)
    for bad in ("five", "150%", "-1%"):
        with pytest.raises(BadInput, match="max-slowdown"):
            parse_slowdown(bad)


def test_cli_gate_exits_1_only_on_a_regression(tmp_path, capsys):
    model = tiny_onnx(tmp_path / "m.onnx")
    base = tmp_path / "base.json"
    assert main(["bench", str(model), "--min-time", "0.2", "--out", str(base), "--quiet"]) == 0
    rec = json.loads(base.read_text())
    # a baseline whose every run took half as long: the model now is twice as slow, by any test
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({**rec, "times_ms": [t / 2 for t in rec["times_ms"]]}))
    capsys.readouterr()
    assert main(["bench", str(model), "--min-time", "0.2", "--baseline", str(fast), "--max-slowdown", "5%",
                 "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    # the whole interval above the 5% allowance; how far above is the machine's load, not the gate's
    assert out["comparison"]["verdict"] == "regression" and out["comparison"]["ci95"][0] > 1.05
    # a baseline twice as slow: no regression, exit 0
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({**rec, "times_ms": [t * 2 for t in rec["times_ms"]]}))
    assert main(["bench", str(model), "--min-time", "0.2", "--baseline", str(slow)]) == 0
    assert "faster" in capsys.readouterr().out
    # another system: refused (exit 2) unless told
    other = tmp_path / "other.json"
    # (from the twice-as-slow record: the same model timed again beside a parallel suite came out 1.59x
    # its own baseline, a regression the allowance is not about)
    other.write_text(json.dumps({**rec, "times_ms": [t * 2 for t in rec["times_ms"]],
                                 "system": {**rec["system"], "cpu": "Other", "fingerprint": "x"}}))
    assert main(["bench", str(model), "--min-time", "0.2", "--baseline", str(other)]) == 2
    assert main(["bench", str(model), "--min-time", "0.2", "--baseline", str(other),
                 "--allow-different-system"]) == 0


def test_baseline_files_that_are_not_results(tmp_path):
    from edgeship.bench.regression import load_baseline

    with pytest.raises(BadInput, match=r"No such file.*--out"):
        load_baseline(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BadInput, match="not JSON"):
        load_baseline(str(tmp_path / "bad.json"))
    (tmp_path / "num.json").write_text("3")
    with pytest.raises(BadInput, match="no benchmark result"):
        load_baseline(str(tmp_path / "num.json"))
