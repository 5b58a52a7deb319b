"""optimize's executors: local processes (parallel) and a real Ray head on 127.0.0.1 give the same
rows, verdicts and choices as one process; benchmarks never overlap other jobs; a killed sweep resumes."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeship.bench.lock import timing_lock
from edgeship.core.errors import BadInput
from edgeship.pipeline.executors import ExecutorConfig, LocalExecutor, SequentialExecutor, make_executor
from edgeship.pipeline.optimize import optimize
from edgeship.pipeline.recipe import OptimizeRecipe
from models.tiny import tiny_onnx

# every kind of step but fp16, which the plan skips on CPUs without fp16 arithmetic (AMD EPYC here)
VARIANTS = ("fp32", "int8-dynamic", "int8-static", "int4-weight", "mixed")


@pytest.fixture()
def sweep_inputs(tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "eval.npz", x=rng.standard_normal((12, 16)).astype(np.float32))
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((64, 16)).astype(np.float32))
    return model, tmp_path


def _recipe(model: Path, folder: Path, name: str, **over) -> OptimizeRecipe:
    fields = {"model": str(model), "data": str(folder / "eval.npz"), "calib": str(folder / "calib.npz"),
              "out": str(folder / name), "bench_min_time_s": 0.05, "variants": VARIANTS,
              "gates": ("cosine_min>=0.99",), "variant_options": {"mixed": {"time_budget_s": 20}}}
    return OptimizeRecipe(**{**fields, **over})


def _outcome(report: dict) -> dict:
    """Each row's verdict and figure. Jobs may run with fewer threads in parallel (ORT's sums then
    round differently in the last bits): figures to 6 places. The mixed search picks its candidate
    by measured latency, so which one it picks is the machine's, not the executor's: its row only."""
    def cos(r):
        v = r["metrics"].get("cosine_min")
        return None if v is None else round(v, 6)

    return {r["id"]: (r["status"], r["gate"]["passed"], cos(r)) if r["variant"] != "mixed" else r["status"] in
            ("pass", "fail") for r in report["variants"]}


def _same_choices(a: dict, b: dict) -> None:
    """The chosen row per target is the same, or each report chose by the same rule on its own
    measurements: the tiny model runs in microseconds, so two passing rows' order is the load's
    between the runs (seen: 52% apart under a parallel suite), not the executor's."""
    def rank(report: dict, row_id: str) -> tuple[bool, float]:
        row = next(r for r in report["variants"] if r["id"] == row_id)
        return bool(row["gate"].get("marginal")), row["latency_ms"]["p50"]

    for target in {r["target"] for r in a["variants"]}:
        ca = next(r for r in a["variants"] if r["target"] == target and r["chosen"])
        cb = next(r for r in b["variants"] if r["target"] == target and r["chosen"])
        if ca["id"] != cb["id"]:
            assert rank(a, ca["id"]) <= rank(a, cb["id"]) and rank(b, cb["id"]) <= rank(b, ca["id"]), \
                (target, ca["id"], cb["id"])


def test_local_parallel_sweep_matches_one_process(sweep_inputs):
    model, folder = sweep_inputs
    seq = optimize(_recipe(model, folder, "seq"), ExecutorConfig(executor="sequential"))
    par = optimize(_recipe(model, folder, "par"), ExecutorConfig(executor="local", workers=2))
    assert seq["executor"]["executor"] == "sequential" and par["executor"] == {
        **par["executor"], "executor": "local", "workers": 2}
    assert [r["id"] for r in par["variants"]] == [r["id"] for r in seq["variants"]]
    assert _outcome(par) == _outcome(seq)
    _same_choices(seq, par)
    assert sorted(par["steps"]["ran"]) == sorted(seq["steps"]["ran"])
    assert par["schema_version"] == 2 and set(par["recommendation"]) == {"onnxruntime-cpu"}
    assert all(len(r["latency_quantiles_ms"]) == 101 for r in par["variants"] if r["latency_ms"])


@contextlib.contextmanager
def _shared_lock_held_elsewhere(seconds: float):
    """Another process holds the shared timing lock (as a job does) for ``seconds`` from entry."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from edgeship.bench.lock import timing_lock\n"
        f"with timing_lock(exclusive=False):\n    print('held', flush=True); time.sleep({seconds})\n")],
        stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.wait(timeout=30)


def test_benchmarks_wait_for_other_jobs_on_the_machine(tmp_path, monkeypatch):
    """A job holding the shared timing lock (in another process) keeps a benchmark from starting."""
    monkeypatch.setenv("EDGESHIP_TIMING_LOCK", str(tmp_path / "lock"))
    with _shared_lock_held_elsewhere(1.5):
        t0 = time.perf_counter()
        with timing_lock(exclusive=True):
            waited = time.perf_counter() - t0
        assert waited > 0.5  # the benchmark started only once the job let go
    with timing_lock(exclusive=False), timing_lock(exclusive=True):  # this process converts its own lock
        pass


def test_executor_configs_and_errors():
    assert isinstance(make_executor(ExecutorConfig(executor="sequential")), SequentialExecutor)
    local = make_executor(ExecutorConfig(workers=3))
    assert isinstance(local, LocalExecutor) and local.workers == 3 and local.parallel
    with pytest.raises(BadInput, match="needs --address"):
        ExecutorConfig(executor="ray")
    with pytest.raises(BadInput, match="--address is for --executor ray"):
        ExecutorConfig(executor="local", address="127.0.0.1:1")
    with pytest.raises(BadInput, match="cannot reach the Ray cluster"):
        make_executor(ExecutorConfig(executor="ray", address=f"127.0.0.1:{_free_port()}"))


def test_a_killed_sweep_resumes_where_it_stopped(sweep_inputs):
    model, folder = sweep_inputs
    recipe = _recipe(model, folder, "killed")
    (folder / "r.yaml").write_text(recipe.to_yaml())
    proc = subprocess.Popen([sys.executable, "-m", "edgeship", "optimize", str(folder / "r.yaml"), "--quiet"],
                            start_new_session=True)
    steps = folder / "killed" / "steps"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(steps.glob("check-*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep: driver and its workers
    proc.wait()
    done_before = {p.stem for p in steps.glob("*.json") if not p.name.startswith(".")}  # not a write cut short
    assert {"export", "golden"} <= done_before and not (folder / "killed" / "report.json").exists()
    # resumed in a fresh process too: steps are reused only if the same code made them, and this
    # test process has held its fingerprint of edgeship's code since it first ran a sweep
    assert subprocess.run([sys.executable, "-m", "edgeship", "optimize", str(folder / "r.yaml"), "--quiet"],
                          timeout=600).returncode == 0
    report = json.loads((folder / "killed" / "report.json").read_text())
    assert done_before <= set(report["steps"]["reused"])  # nothing finished is done again
    assert {r["variant"] for r in report["variants"]} == set(VARIANTS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A real Ray head on 127.0.0.1 (ray start --head --block, stopped by its own process id)."""
    # Not imported here: the executor makes Ray keep to loopback before its first import.
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is the edgeship[ray] extra, installed by make test")
    port = _free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # loopback only
    log = tmp_path_factory.mktemp("ray") / "head.log"
    ray_cli = Path(sys.executable).with_name("ray")
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        head = subprocess.Popen([str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                                 "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                                 "--object-store-memory=100000000", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if "Ray runtime started" in log.read_text():
            break
        assert head.poll() is None, log.read_text()[-2000:]
        time.sleep(0.5)
    try:
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops what it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


@pytest.mark.slow
def test_ray_sweep_matches_the_local_executor(sweep_inputs, ray_head):
    model, folder = sweep_inputs
    local = optimize(_recipe(model, folder, "local"), ExecutorConfig(executor="local"))
    on_ray = optimize(_recipe(model, folder, "ray"), ExecutorConfig(executor="ray", address=ray_head))
    assert on_ray["executor"]["executor"] == "ray" and on_ray["executor"]["nodes"] == 1
    assert on_ray["executor"]["address"] == ray_head
    assert [r["id"] for r in on_ray["variants"]] == [r["id"] for r in local["variants"]]
    assert _outcome(on_ray) == _outcome(local)
    _same_choices(local, on_ray)
    assert on_ray["skipped"] == local["skipped"]
    # the CLI's flags reach the same executor
    from edgeship.cli.main import main

    assert main(["optimize", "--model", str(model), "--data", str(folder / "eval.npz"),
                 "--variants", "fp32,int8-dynamic",
                 "--out", str(folder / "cli"), "--executor", "ray", "--address", ray_head, "--quiet"]) == 0
    report = json.loads((folder / "cli" / "report.json").read_text())
    assert report["executor"]["executor"] == "ray" and len(report["variants"]) == 2


def _where_am_i(pause_s: float) -> tuple[int, int | None, bool]:
    from edgeship.core.progress import is_quiet
    from edgeship.pipeline.executors import job_threads

    time.sleep(pause_s)  # long enough that the other slot takes the next job
    return os.getpid(), job_threads(), is_quiet()


def test_local_executor_runs_one_slot_in_this_process(monkeypatch):
    """Two slots on two cores: one in this process (warm: nothing to import or load again), one in a
    worker; both quiet and with one runtime thread per job; this thread's settings are left alone."""
    monkeypatch.delenv("EDGESHIP_QUIET", raising=False)
    monkeypatch.setattr("edgeship.pipeline.executors.usable_cores", lambda: 2)
    from edgeship.core.progress import is_quiet
    from edgeship.pipeline.executors import job_threads

    with LocalExecutor(workers=2) as ex:
        ex.warm()
        futures = [ex.submit(_where_am_i, 0.5) for _ in range(4)]
        results = [f.result(timeout=120) for f in futures]
    pids = {pid for pid, _, _ in results}
    assert os.getpid() in pids and len(pids) == 2
    assert all(threads == 1 and quiet for _, threads, quiet in results)
    assert job_threads() is None and not is_quiet()


def test_local_executor_passes_a_jobs_error_back():
    with LocalExecutor(workers=2) as ex:
        futures = [ex.submit(_fails, k) for k in range(3)]
        for k, fut in enumerate(futures):
            with pytest.raises(BadInput, match=f"job {k} failed"):
                fut.result(timeout=120)


def _fails(k: int) -> None:
    time.sleep(0.2)
    raise BadInput(f"job {k} failed")


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_a_relative_run_folder_works_on_every_executor(sweep_inputs, monkeypatch, executor):
    """Jobs in the sweep's own process record paths relative to the run folder as the workers do
    (a relative --out once doubled the folder in the FP32 row's path)."""
    model, folder = sweep_inputs
    monkeypatch.chdir(folder)
    report = optimize(_recipe(model, folder, "x", out="runs/rel", variants=("fp32", "int8-dynamic")),
                      ExecutorConfig(executor=executor, workers=2 if executor == "local" else None))
    rows = {r["id"]: r for r in report["variants"]}
    assert rows["fp32@onnxruntime"]["path"] == "fp32.onnx" and rows["fp32@onnxruntime"]["status"] == "pass"
    assert (folder / "runs" / "rel" / rows["int8-dynamic@onnxruntime"]["path"]).is_file()


def test_jobs_beside_this_process_wait_for_a_worker(monkeypatch):
    """submit_beside (a build that trains, started while this process exports) never runs in this
    process; once submit() opens this process's slot, it takes jobs too."""
    monkeypatch.setattr("edgeship.pipeline.executors.usable_cores", lambda: 2)
    with LocalExecutor(workers=2) as ex:
        ex.warm()
        beside = [ex.submit_beside(_where_am_i, 0.0) for _ in range(3)]
        pids = {f.result(timeout=120)[0] for f in beside}
        assert os.getpid() not in pids
        here = [ex.submit(_where_am_i, 0.3) for _ in range(4)]
        assert os.getpid() in {f.result(timeout=120)[0] for f in here}


def test_a_failed_sweep_stops_its_workers_jobs():
    """Leaving the executor on an error terminates a worker's running job (a fine-tune nobody waits
    for) rather than waiting for it."""
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="export failed"), LocalExecutor(workers=2) as ex:
        fut = ex.submit_beside(time.sleep, 120)
        deadline = time.time() + 60
        while not fut.running() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the worker has the job by now
        raise RuntimeError("export failed")
    assert time.perf_counter() - t0 < 60 and fut.done()


def test_a_timed_job_counts_only_the_time_it_held_the_machine(tmp_path, monkeypatch):
    """The wait for the timing lock (other jobs finishing) is not timed work: alone_s is the time
    the timed job held the machine."""
    monkeypatch.setenv("EDGESHIP_TIMING_LOCK", str(tmp_path / "lock"))
    ex = SequentialExecutor()
    with _shared_lock_held_elsewhere(1.5):
        t0 = time.perf_counter()
        ex.alone(time.sleep, 0.2)
        waited = time.perf_counter() - t0
    assert waited > 0.8 and 0.2 <= ex.alone_s < 0.6
