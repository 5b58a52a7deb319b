import numpy as np
import pytest

from edgeship.bench.harness import bench
from edgeship.core.errors import BadInput
from models.tiny import tiny_onnx


def test_bench_measures_in_a_fresh_process(tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    np.savez(tmp_path / "d.npz", x=np.ones((8, 16), np.float32))
    r = bench(str(model), data=str(tmp_path / "d.npz"), batch=4, min_time_s=0.2, min_reps=20)
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
    assert r["repetitions"] >= 20 and r["shapes"] == {"x": [4, 16]}
    # rows per second at batch 4 cannot beat what the fastest timed run allows
    assert 0 < r["throughput_per_s"] <= 4 / (lat["min"] / 1e3) * 1.0001
    assert r["peak_rss_mb"] > 10 and r["load_time_s"] > 0 and r["size_bytes"] == model.stat().st_size
    assert r["system"]["usable_cores"] >= 1 and "onnxruntime" in r["system"]["versions"]


def test_bench_synthetic_batch_fills_symbolic_dims(tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    r = bench(str(model), batch=3, min_time_s=0.1, min_reps=5)
    assert r["shapes"] == {"x": [3, 16]}


def test_bench_bad_input(tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(BadInput, match="positive batch"):
        bench(str(model), batch=0)
    with pytest.raises(BadInput, match="not found"):
        bench(str(tmp_path / "none.onnx"))


def test_bench_states_its_statistics_cold_start_pinning_and_system(tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    r = bench(str(model), batch=2, threads=1, min_time_s=0.2, batch_sizes=(1, 4))
    st = r["stats"]
    assert st["target_ci"] == 0.02 and st["stop"] in ("target", "time_cap", "max_reps")
    assert st["converged"] == (st["ci_rel"] <= 0.02) and ("notes" in r) == (not st["converged"])
    lo, hi = st["ci95_ms"]
    assert lo <= r["latency_ms"]["p50"] <= hi
    assert st["cv"] >= 0 and st["outliers"]["low"] + st["outliers"]["high"] <= r["repetitions"]
    assert r["cpu_ms_per_inference"] > 0 and st["warmup_stable"] in (True, False)
    cold = r["cold_start"]
    assert cold["load_s"] > 0 and cold["first_inference_ms"] > 0 and cold["process_to_result_s"] > cold["load_s"]
    assert r["pinned"] is True and len(r["affinity"]) == 1 and r["threads"] == 1  # one thread, one core, stated
    assert [t["batch"] for t in r["throughput"]] == [2, 1, 4]
    assert all(t["rows_per_s"] == pytest.approx(t["batch"] / (t["p50_ms"] / 1e3)) for t in r["throughput"])
    assert len(r["times_ms"]) * r["times_stride"] >= r["repetitions"]
    s = r["system"]
    assert s["fingerprint"] and s["governor"] and len(s["load_avg"]) == 3 and len(s["load_avg_before"]) == 3
    ins = r["instructions"]
    assert (ins["per_inference"] is None) == bool(ins.get("why_not"))  # a figure, or the reason there is none


def test_perf_counting_path_counts_only_the_counted_runs(tmp_path, monkeypatch):
    """The perf stat control-FIFO path, with a software event every Linux counts (task-clock, in ms):
    where the CPU's counters are exposed the same path counts instructions."""
    import shutil

    from edgeship.bench import counters

    assert shutil.which("perf"), "perf is installed by .ci/run (linux-perf)"
    monkeypatch.setattr(counters, "INSTRUCTIONS", "task-clock")
    counters.perf_support.cache_clear()
    model = tiny_onnx(tmp_path / "m.onnx")
    r = bench(str(model), min_time_s=0.1, target_ci=None)
    ins = r["instructions"]
    assert ins["tool"] == "perf stat" and ins["counted_runs"] >= 5
    # task-clock per inference (ms) is about the CPU time per inference: not the whole process's seconds
    assert 0 < ins["per_inference"] < max(1.0, 20 * r["cpu_ms_per_inference"])


def test_perf_support_says_why_not(monkeypatch):
    from edgeship.bench import counters

    counters.perf_support.cache_clear()
    monkeypatch.setattr(counters.shutil, "which", lambda name: None)
    ok, why = counters.perf_support("instructions:u")
    assert not ok and "perf is not installed" in why
    counters.perf_support.cache_clear()


def test_bench_config_rejects_bad_statistics_settings():
    from edgeship.bench.harness import BenchConfig

    with pytest.raises(BadInput, match="fraction of the median"):
        BenchConfig(target_ci=2.0)
    with pytest.raises(BadInput, match="time cap"):
        BenchConfig(min_time_s=5.0, max_time_s=1.0)
    with pytest.raises(BadInput, match="batch sizes"):
        BenchConfig(batch_sizes=(0,))
