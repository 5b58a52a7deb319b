"""Device telemetry: what a serving process records (latency, errors by kind, input and output
statistics, never the values), the bounded on-disk buffer, and sending with retry: a service that
is down loses nothing within the bound, and a retried report is counted once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ship_helpers import agent_config
from telemetry_fakes import aggregate, report

from edgeship.ship.agent import Agent
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.telemetry import (
    MIN_INFERENCES_PER_REPORT,
    Aggregate,
    Telemetry,
    TelemetryBuffer,
    reference_profile,
    send_pending,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_aggregate_statistics_per_input_and_output():
    agg = Aggregate(target="t")
    rng = np.random.default_rng(0)
    for _ in range(50):
        agg.observe({"pixels": rng.standard_normal((1, 3, 8, 8)).astype(np.float32) + 2.0,
                     "tokens": np.array([[101, 7, 9, 0, 0, 0]], dtype=np.int64)},
                    {"probs": np.array([[0.7, 0.2, 0.1]], np.float32),
                     "embedding": np.full((1, 1, 4), 0.5, np.float32)}, 3.0)
    agg.error("MemoryError")
    stats = agg.sketches()
    assert stats["inputs.pixels.value"].mean == pytest.approx(2.0, abs=0.05)
    assert stats["inputs.pixels.value"].std == pytest.approx(1.0, abs=0.05)
    assert stats["inputs.tokens.length"].quantile(0.5) == pytest.approx(3, rel=0.06)  # non-zero tokens
    assert stats["outputs.probs.confidence"].mean == pytest.approx(0.7, rel=0.06)
    entropy = -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1))
    assert stats["outputs.probs.entropy"].mean == pytest.approx(entropy, rel=0.06)
    assert stats["outputs.embedding.norm"].mean == pytest.approx(1.0, rel=0.06)  # not 2-D scores: its norm
    assert agg.count == 51 and agg.errors == {"MemoryError": 1} and agg.latency.quantile(0.99) == pytest.approx(3.0,
                                                                                                               rel=0.02)


def test_only_aggregates_leave_the_device():
    """A report holds counts in buckets and sums, never an input value or a single inference."""
    secret = np.array([[1234.5678, -8765.4321, 0.0123456]], np.float32)
    agg = Aggregate(target="t")
    agg.observe({"x": secret}, {"y": secret}, 1.0)
    text = json.dumps(agg.to_dict())
    for v in secret.ravel():
        assert f"{v:.4f}"[:7] not in text  # no value appears...
    sketch = agg.to_dict()["inputs"]["x"]["value"]
    assert set(sketch) == {"alpha", "count", "sum", "sum_sq", "min", "max", "zero", "pos", "neg"}
    assert all(isinstance(n, int) for n in sketch["pos"].values())  # ...only bucket counts


def test_telemetry_records_through_the_pointer_and_closes_intervals(device, tmp_path):
    clock = Clock()
    telemetry = Telemetry(device.config.slot_dir, interval_s=10, device_id="dev-1", clock=clock)

    class Runner:
        def infer(self, feeds):
            if feeds["x"][0, 0] > 100:
                raise ValueError("bad input")
            return {"y": feeds["x"] * 2}

    for i in range(30):
        telemetry.infer(Runner(), {"x": np.full((1, 16), i, np.float32)})
    with pytest.raises(ValueError):
        telemetry.infer(Runner(), {"x": np.full((1, 16), 1000, np.float32)})
    assert TelemetryBuffer(device.config.slot_dir).pending() == []  # the interval is still open
    clock.now += 11
    telemetry.infer(Runner(), {"x": np.ones((1, 16), np.float32)})  # closes the first interval
    (first,) = TelemetryBuffer(device.config.slot_dir).pending()
    sent = json.loads(first.read_text())
    active = device.slots.active()
    assert sent["target"] == active["target"] and sent["sha256"] == active["sha256"]
    assert sent["count"] == 31 and sent["errors"] == {"ValueError": 1} and sent["device_id"] == "dev-1"
    # Fewer than MIN_INFERENCES_PER_REPORT inferences never leave alone: carried over, or dropped at the end.
    for _ in range(4):
        telemetry.infer(Runner(), {"x": np.ones((1, 16), np.float32)})
    clock.now += 11
    telemetry.infer(Runner(), {"x": np.ones((1, 16), np.float32)})
    assert len(TelemetryBuffer(device.config.slot_dir).pending()) == 1  # 5 so far: still open
    for _ in range(5):
        telemetry.infer(Runner(), {"x": np.ones((1, 16), np.float32)})
    clock.now += 11
    telemetry.infer(Runner(), {"x": np.ones((1, 16), np.float32)})
    second = json.loads(TelemetryBuffer(device.config.slot_dir).pending()[1].read_text())
    assert second["count"] == MIN_INFERENCES_PER_REPORT
    assert telemetry.flush() is None and len(TelemetryBuffer(device.config.slot_dir).pending()) == 2


def test_the_buffer_is_bounded_and_counts_what_it_dropped(tmp_path):
    buf = TelemetryBuffer(tmp_path, max_reports=5)
    for i in range(8):
        buf.put(report("d", aggregate("t", n=2, seed=i), report_id=f"report-{i:04d}"))
    files = buf.pending()
    assert len(files) == 5
    kept = [json.loads(f.read_text()) for f in files]
    assert [r["report_id"] for r in kept] == [f"report-{i:04d}" for i in range(3, 8)]  # the oldest went
    assert sum(r.get("dropped", 0) for r in kept) == 3


def test_lost_connectivity_loses_nothing_and_a_retry_counts_once(tmp_path):
    slot = tmp_path / "device"
    buf = TelemetryBuffer(slot)
    for i in range(120):
        buf.put(report("dev-1", aggregate("models/m/1/m.onnx", n=5, seed=i)))
    down = RolloutClient("http://127.0.0.1:9", timeout=0.5)  # nothing listens there
    result = send_pending(slot, down, "dev-1")
    assert result["sent"] == 0 and result["pending"] == 120 and "cannot reach" in result["error"]
    with RolloutServer(tmp_path / "r.db") as service:
        client = RolloutClient(service.url)
        # The service takes the first batch but the answer is lost: the device sends it again.
        first = [json.loads(f.read_text()) for f in buf.pending()[:50]]
        client.telemetry(first)
        assert send_pending(slot, client, "dev-1") == {"sent": 120, "pending": 0}
        totals = service.store.telemetry_targets()["models/m/1/m.onnx"]
        assert totals["inferences"] == 120 * 5 and totals["devices"] == 1
        # A report the service refuses as malformed is dropped; it does not hold back the others.
        buf.put(report("dev-1", aggregate("models/m/1/m.onnx", n=5, seed=500)))
        broken = report("dev-1", aggregate("models/m/1/m.onnx", n=5, seed=501))
        broken["latency_ms"]["count"] += 1
        buf.put(broken)
        assert send_pending(slot, client, "dev-1") == {"sent": 1, "pending": 0, "refused": 1}


def test_the_agent_sends_buffered_telemetry_at_each_cycle(repo, server, tmp_path):
    with RolloutServer(tmp_path / "r.db") as service:
        agent = Agent(agent_config(repo, server.url, tmp_path / "dev", rollout_url=service.url, first_runs=False))
        assert agent.run_once().kind == "updated"
        telemetry = Telemetry(agent.config.slot_dir)  # the application does not know the device id
        for _ in range(10):
            telemetry.record({"x": np.zeros((1, 16), np.float32)}, {"y": np.ones((1, 4), np.float32)}, 0.5)
        telemetry.flush()
        assert agent.run_once().kind == "up_to_date"
        target = agent.slots.active()["target"]
        assert service.store.telemetry_targets()[target]["inferences"] == 10
        assert "dev-1" in service.store.drift(target)["devices"] or not service.store.drift(target)["reference"]
        assert TelemetryBuffer(agent.config.slot_dir).pending() == []


def test_reference_profile_of_a_golden_file(releases):
    profile = reference_profile(releases["v1"].golden)
    assert profile["samples"] == 4
    assert set(profile["inputs"]["x"]) == {"value"} and profile["inputs"]["x"]["value"]["count"] == 64
    (output,) = profile["outputs"].values()
    assert set(output) in ({"confidence", "entropy"}, {"norm"})
