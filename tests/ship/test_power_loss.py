"""Faults proven, not assumed: a device is updated from v1 to v2 and loses power (SIGKILL of the
agent and its health check) at random points within each step of the update — download, verify,
stage, health check, switch, probation — 20 points per step (``EDGESHIP_CRASH_POINTS``), then
restarts. Every time, after the kill and after the restart, the device serves v1 or v2: the file
its pointer names is whole (its slot matches its manifest's hashes), has the release's sha256,
loads and runs; never neither, never a half-written file. The restart always ends on v2.

Then the same update with the device's file system filling up or turning read-only at each step:
the agent reports ``storage_failed`` (or a transient download failure), keeps serving a working
model, and finishes the update once the disk takes writes again."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from ship_helpers import agent_config, publish

from edgeship.core.artifact import file_sha256
from edgeship.ship.agent import Agent, active_model
from edgeship.ship.slots import SlotDir

pytestmark = pytest.mark.slow

STEPS = ("download", "verify", "stage", "healthcheck", "switch", "probation")
POINTS = int(os.environ.get("EDGESHIP_CRASH_POINTS", "20"))
LANES = 2  # devices updated at once (the machine has 2 cores)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, releases):
    """A repository with v1 and v2, its server, a device image that runs v1, and a forkserver."""
    from edgeship.ship.repository import RepoConfig, init_repo
    from edgeship.ship.serve import serve_repository

    root = tmp_path_factory.mktemp("power")
    repo = init_repo(root / "repo", RepoConfig())
    publish(repo, releases["v1"], "1.0.0")
    server = serve_repository(repo.path).start()
    image = root / "image"
    config = agent_config(repo, server.url, image, device_id="power-1", probation_cycles=1)
    assert Agent(config).run_once().kind == "updated"
    assert Agent(config).run_once().kind == "up_to_date"  # v1's probation is over: a settled device
    assert SlotDir(image).active()["probation"] is False
    publish(repo, releases["v2"], "2.0.0")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["crash_worker", "edgeship.ship.agent", "edgeship.ship.fetcher",
                                "edgeship.ship.tuf_client", "tuf.ngclient"])
    yield {"root": root, "image": image, "config": config.to_dict(), "ctx": ctx, "releases": releases}
    server.stop()


LOST = 255  # multiprocessing's exit code when the forkserver could not tell it (its pipe closed)


def _run(fleet: dict, slot: Path, trace: Path | None = None, first_runs: bool = True, **kw: object) -> int:
    """One agent cycle on ``slot`` in a forked process; its exit code (-9: killed; ``LOST``: the
    forkserver lost it, about once in 300 runs here, and the process has ended since)."""
    from crash_worker import run_agent

    config = {**fleet["config"], "slot_dir": str(slot), "first_runs": first_runs}
    proc = fleet["ctx"].Process(target=run_agent, args=(config,),
                                kwargs={"trace": str(trace) if trace else "", **kw})
    proc.start()
    proc.join(timeout=180)
    assert proc.exitcode is not None, "the agent did not finish in 3 minutes"
    if proc.exitcode == LOST:  # the agent may still run: wait until it is gone before the disk is judged
        deadline = time.monotonic() + 180
        while _alive(proc.pid):
            assert time.monotonic() < deadline, "the agent did not finish in 3 minutes"
            time.sleep(0.05)
    return int(proc.exitcode)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def serving(slot: Path) -> str:
    """The sha256 of the model the device serves now; fails unless it is whole, loads and runs."""
    from edgeship.targets.onnxruntime.runner import OrtRunner

    sd = SlotDir(slot)
    act = sd.pointer()["active"]
    assert act, "no active model"
    assert sd.slot_intact(act["slot"]), f"slot {act['slot']} does not match its manifest"
    model = active_model(slot)
    sha = file_sha256(model)
    assert sha == act["sha256"]
    with OrtRunner(model) as runner:
        assert all(np.isfinite(v).all() for v in runner.infer({"x": np.ones((1, 16), np.float32)}).values())
    return sha


def _windows(fleet: dict) -> dict[str, float]:
    """How long each step takes (a dry run without faults, its checkpoints timed)."""
    from crash_worker import PART_OF

    slot = fleet["root"] / "dry"
    shutil.copytree(fleet["image"], slot)
    trace = fleet["root"] / "dry.json"
    assert _run(fleet, slot, trace) == 0
    got = json.loads(trace.read_text())
    assert got["outcome"]["outcome"] == "updated", got
    steps = got["steps"]
    end_of_run = steps[-1][0] + 0.05
    out = {}
    for step in STEPS:
        i = next(i for i, (_, s) in enumerate(steps) if s == step)
        end = next((t for t, s in steps[i:] if s != step and s not in PART_OF.get(step, ())), end_of_run)
        out[step] = end - steps[i][0]
    return out


def _trial(fleet: dict, lane: Path, step: str, delay_s: float) -> list[str]:
    """Kill at ``delay_s`` into ``step``, check, restart, check; the problems found. The first
    inferences after the switch (a second health-check process) run in the probation trials only:
    they are that step."""
    v1, v2 = fleet["releases"]["v1"].sha256, fleet["releases"]["v2"].sha256
    first_runs = step == "probation"
    problems = []
    if lane.exists():
        shutil.rmtree(lane)
    shutil.copytree(fleet["image"], lane)
    code = _run(fleet, lane, first_runs=first_runs, kill_step=step, delay_s=delay_s)
    where = f"{step} +{delay_s * 1000:.0f} ms"
    if code not in (-9, LOST):  # a lost exit code: what the disk holds is judged all the same
        problems.append(f"{where}: the agent was not killed (exit {code})")
    try:
        if serving(lane) not in (v1, v2):
            problems.append(f"{where}: serves neither v1 nor v2")
    except Exception as exc:
        problems.append(f"{where}: after the kill: {type(exc).__name__}: {exc}")
    trace = lane.parent / f"{lane.name}.json"
    trace.unlink(missing_ok=True)
    trace.with_suffix(".error").unlink(missing_ok=True)
    code = _run(fleet, lane, trace, first_runs=first_runs)
    if code != 0 and not (code == LOST and trace.exists()):  # the trace is written by an agent that finished
        error = trace.with_suffix(".error")
        last = error.read_text().strip().splitlines()[-3:] if error.exists() else []
        problems.append(f"{where}: the restarted agent failed (exit {code}): {' | '.join(last)}")
        return problems
    outcome = json.loads(trace.read_text())["outcome"]
    if outcome["outcome"] not in ("updated", "up_to_date"):
        problems.append(f"{where}: restart ended {outcome['outcome']}: {outcome.get('detail')}")
    try:
        if serving(lane) != v2:
            problems.append(f"{where}: after the restart the device does not serve v2")
    except Exception as exc:
        problems.append(f"{where}: after the restart: {type(exc).__name__}: {exc}")
    if list(lane.glob(".active.json.*")):
        problems.append(f"{where}: a temporary pointer was left behind")
    return problems


def test_sigkill_at_random_points_of_every_step(fleet):
    windows = _windows(fleet)
    rng = random.Random(18)
    plan = [(step, rng.uniform(0, windows[step])) for step in STEPS for _ in range(POINTS)]
    lanes: queue.Queue[Path] = queue.Queue()
    for i in range(LANES):
        lanes.put(fleet["root"] / f"lane{i}")

    def trial(job: tuple[str, float]) -> list[str]:
        lane = lanes.get()  # a device folder no other trial is using
        try:
            return _trial(fleet, lane, *job)
        finally:
            lanes.put(lane)

    with ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(trial, plan))
    problems = [p for r in results for p in r]
    assert not problems, f"{len(problems)} problems in {len(plan)} power cuts: {problems[:10]}"


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs for the device's slot directory (unmounted after the test)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("fault", ["full", "readonly"])
def test_a_full_or_read_only_disk_at_every_step(fleet, small_disk, fault, tmp_path):
    v1, v2 = fleet["releases"]["v1"].sha256, fleet["releases"]["v2"].sha256
    slot = small_disk / "device"
    for step in STEPS:
        if slot.exists():
            shutil.rmtree(slot)
        shutil.copytree(fleet["image"], slot)
        trace = tmp_path / f"{step}.json"
        assert _run(fleet, slot, trace, kill_step=step, fault=fault, mountpoint=str(small_disk)) == 0, step
        outcome = json.loads(trace.read_text())["outcome"]
        # The disk failed mid-update: the cycle says so (or, past the switch, the update stands).
        assert outcome["outcome"] in ("storage_failed", "download_failed", "updated"), (step, outcome)
        if outcome["outcome"] != "updated":
            assert outcome["transient"] is True, (step, outcome)
        assert serving(slot) in (v1, v2), step
        if fault == "readonly":
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        (small_disk / "filler").unlink(missing_ok=True)
        assert _run(fleet, slot, trace) == 0
        assert json.loads(trace.read_text())["outcome"]["outcome"] in ("updated", "up_to_date"), step
        assert serving(slot) == v2, step
