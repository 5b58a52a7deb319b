"""Fleet simulation: many device agents on loopback through staged rollouts, with injected faults.

    .venv/bin/python benchmarks/fleet_simulation.py [--devices 200] [--fault-rate 0.05] [--json OUT]

Everything is real except the devices' hardware: a signed TUF repository served over HTTP, the
FastAPI/SQLite rollout service, and one ``Agent`` per device (a thread each, its own slot directory,
its health checks in subprocesses). A share of the devices (5% by default) sits behind a faulty
network (a server that drops their first download of each file mid-way, or stalls it past their
deadline) or crashes in the middle of its first update attempt and reboots.

Scenario: every device runs v1 (factory image). v2 (healthy) is rolled out canary 2% → 10% → 50% →
100%. Then v3 — a model that loads but fails its golden check — is published and rolled out: its
canary devices reject it, the service halts the rollout at that stage by itself, and the fleet stays
on v2. The result counts devices without a working model (re-checked at the end, in this process,
against each release's golden outputs with edgeship's comparison engine): it must be zero.

On 2 cores the devices live in a few worker processes (threads inside), the rollout service in its
own process, and the agents skip the post-switch "first inferences" process (the health check before
the switch still runs in a subprocess; tests/ship covers first inferences and crashes).

Exits 1 when a device is left without a working model or the bad rollout did not halt.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.ship.serve import RangeRequestHandler, StaticServer

FAULT_KINDS = ("network-drop", "network-stall", "crash")


def mlp_onnx(path: Path, seed: int, hidden: int = 64) -> Path:
    """A small MLP classifier (float32 [N,32] → [N,10]) saved as ONNX: the simulated fleet's model."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((32, hidden)) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((hidden, 10)) * 0.2).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
         helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["logits"])],
        "fleet_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    from edgeship.core.onnx_file import save

    return save(model, path)


def golden_of(model: Path, out: Path, reference: Path | None = None, samples: int = 8) -> Path:
    """Golden inputs and the outputs of ``reference`` (default: the model itself) in ONNX Runtime."""
    from edgeship.core.golden import save_golden
    from edgeship.targets.onnxruntime.runner import OrtRunner

    rng = np.random.default_rng(1234)
    inputs = [{"x": rng.standard_normal((1, 32)).astype(np.float32)} for _ in range(samples)]
    with OrtRunner(reference or model) as runner:
        return save_golden(out, inputs, [runner.infer(f) for f in inputs])


class FleetFaultHandler(RangeRequestHandler):
    """The repository as seen by devices behind a bad network: their first request for each model
    or golden file is dropped after 30% of the bytes, or stalled past their deadline."""

    def do_GET(self) -> None:
        agent = self.headers.get("User-Agent", "")
        device = agent.rsplit(" ", 1)[-1]
        kind = self.server.faults.get(device)  # type: ignore[attr-defined]
        if kind and "/targets/models/" in self.path and not self.headers.get("Range"):
            with self.server.lock:  # type: ignore[attr-defined]
                first = (device, self.path) not in self.server.seen  # type: ignore[attr-defined]
                self.server.seen.add((device, self.path))  # type: ignore[attr-defined]
            if first:
                self.server.injected[kind] += 1  # type: ignore[attr-defined]
                data = Path(self.translate_path(self.path)).read_bytes()
                if kind == "network-stall":
                    time.sleep(20.0)  # past the device's 15 s deadline
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data[: len(data) * 3 // 10])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                except OSError:
                    pass
                self.close_connection = True
                return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SimulatedCrash(BaseException):
    """Raised inside an agent at an update step: the in-thread stand-in for a power cut."""


@dataclasses.dataclass
class Device:
    device_id: str
    slot_dir: Path
    fault: str | None = None
    crash_step: str | None = None
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    reboots: int = 0
    history: list[str] = dataclasses.field(default_factory=list)


def _provision(slot_dir: Path, model: Path, golden: Path, target: str, version: str, sha: str) -> None:
    """Factory image: v1 already installed in slot a (what the device ships with)."""
    from edgeship.ship.slots import SlotDir

    sd = SlotDir(slot_dir).ensure()
    sd.stage("a", {model.name: model, "golden.npz": golden},
             {"target": target, "name": "fleet-mlp", "version": version, "sha256": sha, "model": model.name,
              "golden": "golden.npz", "gates": [], "runtime": "onnxruntime-cpu"})
    sd.switch("a", probation=False)


def run_devices(specs: list[dict[str, Any]], common: dict[str, Any], stop: Any, results: Any) -> None:
    """Worker process: one agent thread per device until ``stop`` is set; puts per-device outcomes."""
    from edgeship.ship.agent import Agent, AgentConfig

    rng = random.Random(f"{common['seed']}:{specs[0]['device_id'] if specs else ''}")
    poll_s = common["poll_s"]
    report: dict[str, Any] = {}
    lock = threading.Lock()

    def device_loop(spec: dict[str, Any]) -> None:
        outcomes: Counter[str] = Counter()
        history: list[str] = []
        reboots = 0
        crashed = {"done": spec["crash_step"] is None}

        def on_step(step: str) -> None:
            if not crashed["done"] and step == spec["crash_step"]:
                crashed["done"] = True
                raise SimulatedCrash(step)

        cfg = AgentConfig(repo_url=spec["url"], root=common["root"], slot_dir=spec["slot_dir"],
                          device_id=spec["device_id"], model="fleet-mlp", runtimes=("onnxruntime-cpu",),
                          rollout_url=common["rollout_url"],
                          deadline_s=15.0 if spec["fault"] == "network-stall" else 60.0,
                          socket_timeout_s=20.0, healthcheck_timeout_s=120.0, first_runs=False)
        agent = Agent(cfg, on_step=on_step)
        stop.wait(rng.random() * poll_s)
        while not stop.is_set():
            try:
                result = agent.run_once()
                outcomes[result.kind] += 1
                if result.kind != "up_to_date":
                    history.append(f"{result.kind} {result.target} -> {result.active_version}")
            except SimulatedCrash:
                reboots += 1
                agent = Agent(cfg, on_step=on_step)  # the device reboots: a new agent on the same disk
            except Exception as exc:  # a bug: count it, keep the device alive
                outcomes[f"error:{type(exc).__name__}"] += 1
            stop.wait(poll_s * (0.75 + 0.5 * rng.random()))
        with lock:
            report[spec["device_id"]] = {"outcomes": dict(outcomes), "reboots": reboots, "history": history}

    threads = [threading.Thread(target=device_loop, args=(spec,), daemon=True) for spec in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(report)


def simulate(work: Path, devices: int = 200, fault_rate: float = 0.05, stages: tuple[float, ...] = (2, 10, 50, 100),
             poll_s: float = 3.0, timeout_s: float = 280.0, seed: int = 0, workers: int = 4,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the scenario in ``work`` (created empty); returns the figures and prints a few lines."""
    from edgeship.core.artifact import file_sha256
    from edgeship.ship.publish import publish_model
    from edgeship.ship.repository import init_repo
    from edgeship.ship.rollout.client import RolloutClient
    from edgeship.ship.rollout.config import RolloutConfig
    from edgeship.ship.rollout.service import RolloutProcess
    from edgeship.ship.serve import serve_repository

    t_start = time.monotonic()
    rng = random.Random(seed)
    if work.exists():
        shutil.rmtree(work)
    (work / "releases").mkdir(parents=True)
    rel: dict[str, dict[str, Any]] = {}
    for name, s in (("v1", 1), ("v2", 2), ("v3", 3)):
        d = work / "releases" / name
        d.mkdir()
        m = mlp_onnx(d / "model.onnx", s)
        # v3's golden outputs are v2's: v3 loads and runs, but gives other answers (a bad model).
        reference = work / "releases" / "v2" / "model.onnx" if name == "v3" else None
        g = golden_of(m, d / "golden.npz", reference=reference)
        rel[name] = {"model": m, "golden": g, "sha256": file_sha256(m)}
    repo = init_repo(work / "repo")
    gates = ["cosine_min>=0.999"]
    r1 = publish_model(repo, rel["v1"]["model"], rel["v1"]["golden"], "stable", "1.0.0", name="fleet-mlp",
                       gates=gates, latency_budget_ms=250.0)
    fleet: list[Device] = []
    n_faulty = round(devices * fault_rate)
    faulty_ids = set(rng.sample(range(devices), n_faulty))
    for i in range(devices):
        dev = Device(f"dev-{i:04d}", work / "devices" / f"dev-{i:04d}")
        if i in faulty_ids:
            dev.fault = FAULT_KINDS[len([d for d in fleet if d.fault]) % len(FAULT_KINDS)]
            if dev.fault == "crash":
                dev.crash_step = rng.choice(["download", "stage", "fsync", "switch", "switched"])
        _provision(dev.slot_dir, rel["v1"]["model"], rel["v1"]["golden"], r1["target"], "1.0.0", rel["v1"]["sha256"])
        fleet.append(dev)
    say(f"fleet: {devices} devices on v1 ({n_faulty} with injected faults: "
        f"{dict(Counter(d.fault for d in fleet if d.fault))}); stages {'/'.join(f'{s:g}' for s in stages)}%")

    good = serve_repository(repo.path).start()
    bad_net = StaticServer(repo.path / "public", handler=FleetFaultHandler)
    bad_net.httpd.faults = {d.device_id: d.fault for d in fleet if d.fault in ("network-drop", "network-stall")}  # type: ignore[attr-defined]
    bad_net.httpd.seen = set()  # type: ignore[attr-defined]
    bad_net.httpd.lock = threading.Lock()  # type: ignore[attr-defined]
    bad_net.httpd.injected = Counter()  # type: ignore[attr-defined]
    bad_net.start()
    rollout = RolloutProcess(work / "rollouts.db")
    client = RolloutClient(rollout.url, timeout=30)
    # Devices run in a few worker processes (threads inside): one process alone would be held
    # back by its GIL; the servers stay in this process.
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    results: Any = ctx.Queue()
    specs = [{"device_id": d.device_id, "slot_dir": str(d.slot_dir), "fault": d.fault, "crash_step": d.crash_step,
              "url": bad_net.url if d.fault in ("network-drop", "network-stall") else good.url} for d in fleet]
    common = {"root": str(repo.metadata_dir / "1.root.json"), "rollout_url": rollout.url, "poll_s": poll_s,
              "seed": seed}
    n_workers = max(1, min(workers, len(specs)))
    procs = [ctx.Process(target=run_devices, args=(specs[i::n_workers], common, stop, results), daemon=True)
             for i in range(n_workers)]
    for proc in procs:
        proc.start()
    # Every device checks in once (the service learns the fleet) before the first rollout starts.
    t_ready = time.monotonic()
    while client.status()["fleet"]["devices"] < devices and time.monotonic() - t_ready < timeout_s / 4:
        time.sleep(0.5)
    timeline: list[str] = []

    def wait_for(pred: Callable[[dict[str, Any]], bool], limit_s: float) -> dict[str, Any]:
        end = time.monotonic() + limit_s
        last, last_at = "", 0.0
        while True:
            s = client.status()
            for r in s["rollouts"]:
                for e in r["events"]:
                    line = f"{e['at'] - t0:7.1f}s rollout {r['id']}: {e['text']}"
                    if line not in timeline:
                        timeline.append(line)
                        say("  " + line)
            if pred(s) or time.monotonic() > end:
                return s
            by = s["fleet"]["by_target"]
            now = ", ".join(f"{n} on {t.split('/')[2]}" for t, n in sorted(by.items()) if t.count("/") > 2)
            if now != last and time.monotonic() - last_at >= 5:
                last, last_at = now, time.monotonic()
                say(f"  {time.time() - t0:7.1f}s fleet: {now}")
            time.sleep(0.5)

    t0 = time.time()
    budget = timeout_s - (time.monotonic() - t_start)
    r2 = publish_model(repo, rel["v2"]["model"], rel["v2"]["golden"], "stable", "2.0.0", name="fleet-mlp",
                       gates=gates, latency_budget_ms=250.0)
    ro2 = client.start(RolloutConfig(model="fleet-mlp", target=r2["target"], from_target=r2["previous"],
                                     stages=stages))
    say(f"published v2, rollout {ro2['id']}")

    def rollout_state(s: dict[str, Any], rid: int) -> dict[str, Any]:
        return next(r for r in s["rollouts"] if r["id"] == rid)

    def v2_everywhere(s: dict[str, Any]) -> bool:
        return rollout_state(s, ro2["id"])["status"] == "complete" and \
            s["fleet"]["by_target"].get(r2["target"], 0) >= devices

    s = wait_for(v2_everywhere, budget * 0.7)
    t_v2 = time.time() - t0
    on_v2 = s["fleet"]["by_target"].get(r2["target"], 0)
    say(f"v2 on {on_v2}/{devices} devices after {t_v2:.1f} s")
    r3 = publish_model(repo, rel["v3"]["model"], rel["v3"]["golden"], "stable", "3.0.0", name="fleet-mlp",
                       gates=gates, latency_budget_ms=250.0)
    ro3 = client.start(RolloutConfig(model="fleet-mlp", target=r3["target"], from_target=r3["previous"],
                                     stages=stages))
    say(f"published v3 (bad: fails its golden check), rollout {ro3['id']}")

    def settled(s: dict[str, Any]) -> bool:
        r = rollout_state(s, ro3["id"])
        return r["status"] == "halted" and s["fleet"]["by_target"].get(r2["target"], 0) >= devices

    left = timeout_s - (time.monotonic() - t_start) - 15
    s = wait_for(settled, max(5.0, left))
    time.sleep(poll_s * 1.5)  # one more cycle for every device: nobody is mid-update when we stop
    stop.set()
    per_device: dict[str, Any] = {}
    for _ in procs:
        # A worker that died reports nothing: its devices are still checked on disk below.
        with contextlib.suppress(Exception):
            per_device.update(results.get(timeout=120))
    for proc in procs:
        proc.join(timeout=30)
    crashes: Counter[str] = Counter()
    for dev in fleet:
        got = per_device.get(dev.device_id, {})
        dev.outcomes.update(got.get("outcomes", {}))
        dev.reboots = got.get("reboots", 0)
        dev.history = got.get("history", [])
        if dev.reboots and dev.crash_step:
            crashes[dev.crash_step] += dev.reboots
    s = client.status()
    ro3_final = rollout_state(s, ro3["id"])
    ro2_final = rollout_state(s, ro2["id"])
    served = {"good": len(good.requests), "faulty_network": dict(bad_net.httpd.injected)}  # type: ignore[attr-defined]
    good.stop()
    bad_net.stop()
    rollout.stop()

    # Verify every device now: the model its pointer names loads, runs, and matches its golden outputs
    # under the FP32 tolerance of edgeship's one comparison engine.
    from edgeship.check.judge import judge
    from edgeship.core.artifact import Model
    from edgeship.core.golden import load_golden
    from edgeship.ship.slots import SlotDir
    from edgeship.targets.base import runner_for

    by_sha = {rel[k]["sha256"]: k for k in rel}
    expected = {k: load_golden(rel[k]["golden"])[:2] for k in ("v1", "v2")}
    working: Counter[str] = Counter()
    broken: list[str] = []
    for dev in fleet:
        try:
            model = SlotDir(dev.slot_dir).active_model()
            version = by_sha.get(file_sha256(model), "unknown")
            if version not in expected:
                broken.append(f"{dev.device_id}: {version}")
                continue
            inputs, refs = expected[version]
            with runner_for(Model.open(model)) as runner:
                verdict = judge(refs, [runner.infer(feeds) for feeds in inputs], name=dev.device_id)
            if verdict.passed:
                working[version] += 1
            else:
                broken.append(f"{dev.device_id}: {version}: {verdict.why}")
        except Exception as exc:
            broken.append(f"{dev.device_id}: {type(exc).__name__}: {exc}")
    outcomes: Counter[str] = Counter()
    for dev in fleet:
        outcomes.update(dev.outcomes)
    del outcomes["up_to_date"]
    result = {
        "devices": devices, "faulty_devices": n_faulty,
        "faults": {"injected": {**served["faulty_network"], "crash": sum(crashes.values())},
                   "crash_steps": dict(crashes)},
        "v2_rollout": {"status": ro2_final["status"], "seconds_to_all_devices": round(t_v2, 1),
                       "events": [e["text"] for e in ro2_final["events"]]},
        "v3_rollout": {"status": ro3_final["status"], "halted_at_percent": ro3_final["percent"],
                       "halted_at_stage": ro3_final["stage"], "reason": ro3_final.get("reason"),
                       "cohort": ro3_final["stats"]["cohort"], "failed": ro3_final["stats"]["failed"],
                       "events": [e["text"] for e in ro3_final["events"]]},
        "working_model": dict(working), "without_working_model": len(broken), "broken": broken[:10],
        "outcomes": dict(outcomes), "requests_to_repo": served["good"],
        # What the devices that did more than one plain update went through (at most 20 of them).
        "eventful_devices": dict(list({d.device_id: {"fault": d.fault, "history": d.history} for d in fleet
                                       if any(not h.startswith("updated") for h in d.history) or d.reboots
                                       }.items())[:20]),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    say(f"v3 rollout {ro3_final['status']} at {ro3_final['percent']:g}% (stage {ro3_final['stage']}): "
        f"{ro3_final.get('reason')}")
    say(f"devices with a working model: {sum(working.values())}/{devices} ({dict(working)}); "
        f"without: {len(broken)}")
    say(f"update outcomes: {dict(outcomes)}; faults injected: {result['faults']['injected']}")
    say(f"total {result['seconds']} s")
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--fault-rate", type=float, default=0.05)
    p.add_argument("--poll", type=float, default=3.0, help="seconds between a device's update checks")
    p.add_argument("--timeout", type=float, default=280.0)
    p.add_argument("--work", type=Path, default=None, help="folder for the repository and devices (default: temp)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeship-fleet-") as tmp:
        work = args.work or Path(tmp) / "fleet"
        result = simulate(work, devices=args.devices, fault_rate=args.fault_rate, poll_s=args.poll,
                          timeout_s=args.timeout)
    print(json.dumps({k: v for k, v in result.items() if k != "broken"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["without_working_model"] == 0 and result["v3_rollout"]["status"] == "halted"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
