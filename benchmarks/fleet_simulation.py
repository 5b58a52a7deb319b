"""Fleet simulation: many device agents on loopback through staged rollouts with telemetry gates,
with injected faults.

    .venv/bin/python benchmarks/fleet_simulation.py [--devices 1000] [--fault-rate 0.05] [--db postgresql]
        [--healthy-rollout] [--screenshot OUT.png] [--json OUT.json]

Everything is real except the devices' hardware: a signed TUF repository served over HTTP, the
FastAPI rollout service over PostgreSQL (a throwaway server the script starts; ``--db sqlite`` for
the embedded default), and per device an ``Agent`` (a thread, its own slot directory, its health
checks in subprocesses) and a serving loop that runs the active model in ONNX Runtime and records
telemetry with ``edgeship.ship.telemetry`` (aggregates in the slot directory's buffer, sent by the
agent each cycle). The hardware is what is simulated: each device has its own speed, and a release's
latency on a device is that speed × the release's cost (1.3 for the regressing release) × noise.

A share of the devices (5% by default) is faulty: a network that drops their first download of each
file mid-way, or stalls it past their deadline; a crash in the middle of their first update attempt
(then a reboot); or a drifted sensor (inputs shifted by one standard deviation).

Scenario: every device runs v1 (factory image) and reports telemetry on it. With ``--healthy-rollout``
v2 (same speed) is rolled out first, through every stage. Then the regressing release — right
outputs, 30% slower — is published with its reference profile and rolled out 1% → 10% → 50% → 100%
with telemetry gates (latency regression against the previous release on the same devices ≤ 20%,
error rate ≤ 5%): its canary installs it, serves it, reports, and the service halts the rollout at
the first stage on the latency gate, naming the devices; they go back to the previous release. The
result counts devices without a working model (re-checked at the end, in this process, against each
release's golden outputs with edgeship's comparison engine): it must be zero. ``--screenshot``
loads the service's /dashboard in headless Chromium before the service stops.

Exits 1 when a device is left without a working model or the regressing rollout did not halt at its
first stage on the latency gate.
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

from edgeship.core import atomic
from edgeship.ship.serve import RangeRequestHandler, StaticServer

FAULT_KINDS = ("network-drop", "network-stall", "crash", "sensor-drift")
REGRESSION = 1.3  # the regressing release's latency over the previous one's, on every device
GATES = {"max_latency_regression": 0.2, "max_error_rate": 0.05}


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
    speed_ms: float = 1.0  # what this device's hardware takes for a release of cost 1
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


def _serve(specs: list[dict[str, Any]], common: dict[str, Any], stop: Any, served: Counter[str]) -> None:
    """The devices' applications: each runs its active model ``per_report`` times per telemetry
    interval on inputs like the golden data (shifted on a drifted sensor) and records what it does."""
    from edgeship.ship.slots import SlotDir
    from edgeship.ship.telemetry import Telemetry
    from edgeship.targets.onnxruntime.runner import OrtRunner

    rng = np.random.default_rng(abs(hash(specs[0]["device_id"])) % 2**32 if specs else 0)
    sessions: dict[str, Any] = {}  # one runner per release and process (the simulated devices share it)
    telemetry = {s["device_id"]: Telemetry(s["slot_dir"], interval_s=common["telemetry_s"], device_id=s["device_id"],
                                           task="classification") for s in specs}
    running: dict[str, str] = {}
    tick = 1.0
    per_tick = common["per_report"] * tick / common["telemetry_s"]
    debt = dict.fromkeys(telemetry, 0.0)
    try:
        while not stop.wait(tick):
            for spec in specs:
                d = spec["device_id"]
                act = SlotDir(spec["slot_dir"]).active() or {}
                sha = act.get("sha256")
                if not sha:
                    continue
                if running.get(d) != sha:  # the application reloads the model the pointer names
                    if d in running:
                        telemetry[d].switched()
                    running[d] = sha
                if sha not in sessions:
                    sessions[sha] = OrtRunner(Path(spec["slot_dir"]) / act["path"]).__enter__()
                debt[d] += per_tick
                while debt[d] >= 1:
                    debt[d] -= 1
                    shift = 1.0 if spec["fault"] == "sensor-drift" else 0.0
                    x = rng.standard_normal((1, 32)).astype(np.float32) + shift
                    outputs = sessions[sha].infer({"x": x})
                    cost = common["costs"].get(sha, 1.0)
                    telemetry[d].record({"x": x}, outputs, spec["speed_ms"] * cost * float(rng.lognormal(0, 0.05)))
                    served[d] += 1
    finally:
        for r in sessions.values():
            with contextlib.suppress(Exception):
                r.__exit__(None, None, None)


def run_devices(specs: list[dict[str, Any]], common: dict[str, Any], stop: Any, results: Any) -> None:
    """Worker process: one agent thread per device and one serving thread for all of them, until
    ``stop`` is set; puts per-device outcomes."""
    from edgeship.ship.agent import Agent, AgentConfig

    rng = random.Random(f"{common['seed']}:{specs[0]['device_id'] if specs else ''}")
    poll_s = common["poll_s"]
    report: dict[str, Any] = {}
    lock = threading.Lock()
    served: Counter[str] = Counter()

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
                          deadline_s=15.0 if spec["fault"] == "network-stall" else 120.0,
                          socket_timeout_s=30.0, healthcheck_timeout_s=180.0, first_runs=False)
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
            report[spec["device_id"]] = {"outcomes": dict(outcomes), "reboots": reboots, "history": history,
                                         "inferences": served[spec["device_id"]]}

    threads = [threading.Thread(target=device_loop, args=(spec,), daemon=True) for spec in specs]
    threads.append(threading.Thread(target=_serve, args=(specs, common, stop, served), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(report)


def _database(kind: str, work: Path) -> tuple[str, Any]:
    """The rollout service's database: a SQLite file, a PostgreSQL server started for the run, or
    the database a ``postgresql://`` URL names."""
    if "://" in kind:
        return kind, None
    if kind == "sqlite":
        return str(work / "rollouts.db"), None
    sys.path.insert(0, str(Path(__file__).parent))
    from pg_server import PostgresServer

    server = PostgresServer().start()
    return server.new_database(), server


def screenshot(url: str, out: Path) -> dict[str, Any]:
    """/dashboard in headless Chromium (Debian's): a full-page screenshot and what its rollouts say."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            status = page.goto(url + "/dashboard", timeout=120_000).status
            page.screenshot(path=str(out), full_page=True)
            return {"status": status, "file": str(out), "rollouts": page.inner_text("#rollouts")[:2000],
                    "charts": page.locator("svg.chart").count()}
        finally:
            browser.close()


def simulate(work: Path, devices: int = 1000, fault_rate: float = 0.05, stages: tuple[float, ...] = (1, 10, 50, 100),
             poll_s: float = 10.0, telemetry_s: float = 10.0, per_report: int = 20, timeout_s: float = 900.0,
             seed: int = 0, workers: int = 4, db: str = "postgresql", healthy_rollout: bool = False,
             min_reports: int = 3, shot: Path | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the scenario in ``work`` (created empty); returns the figures and prints a few lines."""
    from edgeship.core.artifact import file_sha256
    from edgeship.ship.publish import publish_model
    from edgeship.ship.repository import init_repo
    from edgeship.ship.rollout.client import RolloutClient
    from edgeship.ship.rollout.config import RolloutConfig, TelemetryGates
    from edgeship.ship.rollout.service import RolloutProcess
    from edgeship.ship.serve import serve_repository
    from edgeship.ship.telemetry import reference_profile

    t_start = time.monotonic()
    rng = random.Random(seed)
    if work.exists():
        shutil.rmtree(work)
    (work / "releases").mkdir(parents=True)
    rel: dict[str, dict[str, Any]] = {}
    for name, s, cost in (("v1", 1, 1.0), ("v2", 2, 1.0), ("slow", 3, REGRESSION)):
        d = work / "releases" / name
        d.mkdir()
        m = mlp_onnx(d / "model.onnx", s)
        rel[name] = {"model": m, "golden": golden_of(m, d / "golden.npz", samples=64), "sha256": file_sha256(m),
                     "cost": cost}
    repo = init_repo(work / "repo")
    gates = ["cosine_min>=0.999"]
    published = {"v1": publish_model(repo, rel["v1"]["model"], rel["v1"]["golden"], "stable", "1.0.0",
                                     name="fleet-mlp", gates=gates, latency_budget_ms=250.0)}
    fleet: list[Device] = []
    n_faulty = round(devices * fault_rate)
    faulty_ids = set(rng.sample(range(devices), n_faulty))
    for i in range(devices):
        dev = Device(f"dev-{i:04d}", work / "devices" / f"dev-{i:04d}", speed_ms=rng.uniform(0.5, 4.0))
        if i in faulty_ids:
            dev.fault = FAULT_KINDS[len([d for d in fleet if d.fault]) % len(FAULT_KINDS)]
            if dev.fault == "crash":
                dev.crash_step = rng.choice(["download", "verify", "stage", "fsync", "healthcheck", "switch"])
        _provision(dev.slot_dir, rel["v1"]["model"], rel["v1"]["golden"], published["v1"]["target"], "1.0.0",
                   rel["v1"]["sha256"])
        fleet.append(dev)
    say(f"fleet: {devices} devices on v1 ({n_faulty} faulty: {dict(Counter(d.fault for d in fleet if d.fault))}); "
        f"stages {'/'.join(f'{s:g}' for s in stages)}%; rollout store on {db}")

    url, pg = _database(db, work)
    good = serve_repository(repo.path).start()
    bad_net = StaticServer(repo.path / "public", handler=FleetFaultHandler)
    bad_net.httpd.faults = {d.device_id: d.fault for d in fleet if d.fault in ("network-drop", "network-stall")}  # type: ignore[attr-defined]
    bad_net.httpd.seen = set()  # type: ignore[attr-defined]
    bad_net.httpd.lock = threading.Lock()  # type: ignore[attr-defined]
    bad_net.httpd.injected = Counter()  # type: ignore[attr-defined]
    bad_net.start()
    rollout = RolloutProcess(url)
    client = RolloutClient(rollout.url, timeout=60)
    client.put_profile(published["v1"]["target"], reference_profile(rel["v1"]["golden"], "classification"))
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    results: Any = ctx.Queue()
    specs = [{"device_id": d.device_id, "slot_dir": str(d.slot_dir), "fault": d.fault, "crash_step": d.crash_step,
              "speed_ms": d.speed_ms, "url": bad_net.url if d.fault in ("network-drop", "network-stall") else good.url}
             for d in fleet]
    common = {"root": str(repo.metadata_dir / "1.root.json"), "rollout_url": rollout.url, "poll_s": poll_s,
              "seed": seed, "telemetry_s": telemetry_s, "per_report": per_report,
              "costs": {rel[k]["sha256"]: rel[k]["cost"] for k in rel}}
    n_workers = max(1, min(workers, len(specs)))
    procs = [ctx.Process(target=run_devices, args=(specs[i::n_workers], common, stop, results), daemon=True)
             for i in range(n_workers)]
    for proc in procs:
        proc.start()
    timeline: list[str] = []
    t0 = time.time()

    def wait_for(pred: Callable[[dict[str, Any]], bool], limit_s: float, what: str) -> dict[str, Any]:
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
            if pred(s):
                return s
            if time.monotonic() > end:
                say(f"  gave up waiting for {what} after {limit_s:.0f} s")
                return s
            by = s["fleet"]["by_target"]
            now = ", ".join(f"{n} on {t.split('/')[2]}" for t, n in sorted(by.items()) if t.count("/") > 2)
            if now != last and time.monotonic() - last_at >= 10:
                last, last_at = now, time.monotonic()
                say(f"  {time.time() - t0:7.1f}s fleet: {now}")
            time.sleep(2.0)

    def left() -> float:
        return max(30.0, timeout_s - (time.monotonic() - t_start))

    def reporting(target: str, share: float = 0.9) -> Callable[[dict[str, Any]], bool]:
        """Most of the fleet has sent telemetry on ``target`` (the baseline the latency gate reads)."""
        return lambda s: (s["telemetry"].get(target) or {}).get("devices", 0) >= share * devices

    def rollout_state(s: dict[str, Any], rid: int) -> dict[str, Any]:
        return next(r for r in s["rollouts"] if r["id"] == rid)

    # Every device checks in and reports on what it runs before the first rollout starts.
    wait_for(reporting(published["v1"]["target"]), left() / 3, "telemetry on v1")
    say(f"{time.time() - t0:.1f}s: the fleet reports telemetry on v1")
    baseline = "v1"
    telemetry_gates = TelemetryGates(min_inferences=per_report, **GATES)
    out: dict[str, Any] = {}

    def release_and_roll_out(key: str, version: str) -> dict[str, Any]:
        """Publish release ``key``, give the service its reference profile, start its rollout."""
        published[key] = publish_model(repo, rel[key]["model"], rel[key]["golden"], "stable", version,
                                       name="fleet-mlp", gates=gates, latency_budget_ms=250.0)
        client.put_profile(published[key]["target"], reference_profile(rel[key]["golden"], "classification"))
        return client.start(RolloutConfig(model="fleet-mlp", target=published[key]["target"],
                                          from_target=published[key]["previous"], stages=stages,
                                          min_reports=min_reports, gates=telemetry_gates))

    if healthy_rollout:
        ro = release_and_roll_out("v2", "2.0.0")
        say(f"published v2 (healthy), rollout {ro['id']}")
        t_v2 = time.time()
        s = wait_for(lambda s: rollout_state(s, ro["id"])["status"] != "active" and
                     s["fleet"]["by_target"].get(published["v2"]["target"], 0) >= devices, left() / 2, "v2")
        r = rollout_state(s, ro["id"])
        out["v2_rollout"] = {"status": r["status"], "seconds_to_all_devices": round(time.time() - t_v2, 1),
                             "events": [e["text"] for e in r["events"]], "reason": r.get("reason")}
        wait_for(reporting(published["v2"]["target"]), left() / 3, "telemetry on v2")
        baseline = "v2"
    ro3 = release_and_roll_out("slow", "3.0.0")
    t_slow = time.time()
    say(f"published 3.0.0 ({REGRESSION - 1:.0%} slower on every device), rollout {ro3['id']} from {baseline}")

    def settled(s: dict[str, Any]) -> bool:
        r = rollout_state(s, ro3["id"])
        return r["status"] != "active" and \
            s["fleet"]["by_target"].get(published[baseline]["target"], 0) >= devices
    s = wait_for(settled, left() - 60, "the regressing rollout to settle")
    t_halt = next((e["at"] - t_slow for e in rollout_state(s, ro3["id"])["events"] if e["text"].startswith("halted")),
                  None)
    time.sleep(poll_s * 1.5)  # one more cycle for every device: nobody is mid-update when we stop
    dashboard = None
    if shot is not None:
        try:
            dashboard = screenshot(rollout.url, shot)
        except Exception as exc:  # the figures stand without the picture
            dashboard = {"error": f"{type(exc).__name__}: {exc}"}
    stop.set()
    per_device: dict[str, Any] = {}
    for _ in procs:
        # A worker that died reports nothing: its devices are still checked on disk below.
        with contextlib.suppress(Exception):
            per_device.update(results.get(timeout=180))
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
    telemetry_totals = s["telemetry"]
    served = {"good": len(good.requests), "faulty_network": dict(bad_net.httpd.injected)}  # type: ignore[attr-defined]
    drift = client.drift(published[baseline]["target"])
    good.stop()
    bad_net.stop()
    rollout.stop()
    if pg is not None:
        pg.stop()

    # Verify every device now: the model its pointer names loads, runs, and matches its golden outputs
    # under the FP32 tolerance of edgeship's one comparison engine.
    from edgeship.check.judge import judge
    from edgeship.core.artifact import Model
    from edgeship.core.golden import load_golden
    from edgeship.ship.slots import SlotDir
    from edgeship.targets.base import runner_for

    by_sha = {rel[k]["sha256"]: k for k in rel}
    expected = {k: load_golden(rel[k]["golden"])[:2] for k in rel}
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
    halt = ro3_final.get("halt") or {}
    # A drifted sensor shows in its inputs (a device's per-row output statistics, a hundred or so
    # values against a 64-sample golden file, are too few to single one device out reliably).
    drifted = sorted(d for d, v in drift["devices"].items() if (v["scores"].get("inputs.x.value") or 0) > 0.25)
    result = {
        "devices": devices, "faulty_devices": n_faulty, "database": db.split("://")[0],
        "faults": {"injected": {**served["faulty_network"], "crash": sum(crashes.values()),
                                "sensor-drift": sum(1 for d in fleet if d.fault == "sensor-drift")},
                   "crash_steps": dict(crashes)},
        **out,
        "regressing_rollout": {
            "status": ro3_final["status"], "halted_at_percent": ro3_final["percent"],
            "halted_at_stage": ro3_final["stage"], "gate": halt.get("gate"), "gates_failed": halt.get("gates"),
            "value": halt.get("value"), "devices_named": halt.get("devices"), "reason": ro3_final.get("reason"),
            "cohort": ro3_final["stats"]["cohort"], "seconds_to_halt": None if t_halt is None else round(t_halt, 1),
            "events": [e["text"] for e in ro3_final["events"]]},
        "telemetry": {"inferences": sum(v["inferences"] for v in telemetry_totals.values()),
                      "by_release": telemetry_totals,
                      "drifted_devices_found": drifted,
                      "drift_of_found": {d: drift["devices"][d]["scores"] for d in drifted},
                      "drifted_devices_injected": sorted(d.device_id for d in fleet if d.fault == "sensor-drift")},
        "working_model": dict(working), "without_working_model": len(broken), "broken": broken[:10],
        "outcomes": dict(outcomes), "requests_to_repo": served["good"], "dashboard": dashboard,
        "eventful_devices": dict(list({d.device_id: {"fault": d.fault, "history": d.history} for d in fleet
                                       if any(not h.startswith("updated") for h in d.history) or d.reboots
                                       }.items())[:20]),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    say(f"regressing rollout {ro3_final['status']} at {ro3_final['percent']:g}% (stage {ro3_final['stage']}) "
        f"by gate {halt.get('gate')}: {ro3_final.get('reason')}")
    say(f"devices with a working model: {sum(working.values())}/{devices} ({dict(working)}); without: {len(broken)}")
    say(f"update outcomes: {dict(outcomes)}; faults injected: {result['faults']['injected']}")
    say(f"drifted sensors found by input PSI > 0.25: {len(drifted)} of "
        f"{result['faults']['injected']['sensor-drift']}")
    say(f"total {result['seconds']} s")
    return result


def passed(result: dict[str, Any]) -> bool:
    r = result["regressing_rollout"]
    return result["without_working_model"] == 0 and r["status"] == "halted" and r["halted_at_stage"] == 0 \
        and r["gate"] == "latency_regression"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--fault-rate", type=float, default=0.05)
    p.add_argument("--poll", type=float, default=10.0, help="seconds between a device's update checks")
    p.add_argument("--telemetry", type=float, default=10.0, help="seconds of one telemetry report")
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--healthy-rollout", action="store_true", help="roll out a healthy v2 first")
    p.add_argument("--workers", type=int, default=4, help="device processes")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--work", type=Path, default=None, help="folder for the repository and devices (default: temp)")
    p.add_argument("--screenshot", type=Path, default=None, help="save the dashboard (headless Chromium) here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeship-fleet-") as tmp:
        work = args.work or Path(tmp) / "fleet"
        result = simulate(work, devices=args.devices, fault_rate=args.fault_rate, poll_s=args.poll,
                          telemetry_s=args.telemetry, timeout_s=args.timeout, workers=args.workers, db=args.db,
                          healthy_rollout=args.healthy_rollout, shot=args.screenshot)
    print(json.dumps({k: v for k, v in result.items() if k != "broken"}, indent=2))
    if args.json:
        atomic.write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
