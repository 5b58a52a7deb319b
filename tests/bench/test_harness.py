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
