"""Where ``edgeship optimize`` runs its independent jobs (builds, conversions, checks) and its timed
ones (benchmarks, and builds that time candidates, such as the mixed-precision search).

- ``sequential``: every job in this process, one after another.
- ``local`` (the default): as many job slots as the usable cores, one in this process and the
  others in worker processes (each job's runtime then gets ``cores // workers`` threads); one
  worker or one core runs every job in this process.
- ``ray``: tasks on a Ray cluster (``--executor ray --address HOST:PORT``; the ``edgeship[ray]``
  extra). Every node needs edgeship installed and the run folder at the same path (a shared
  filesystem; on one machine it is). A loopback address keeps the whole cluster on loopback.

Timed jobs never run beside other jobs: :meth:`Executor.alone` runs one while nothing else of the
sweep runs (the pipeline submits them only between phases), and on its machine under the timing
lock (``bench.lock``) that every other edgeship job holds shared; on Ray the task also asks for all
of its node's CPUs, so Ray schedules nothing else there meanwhile. Every timed job goes to one node,
so the latencies in one report compare.

A job is a module-level function and picklable arguments; its results are plain data. Steps go
through the run folder's :class:`RunStore`, so a killed sweep, rerun, reuses every finished step.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

from edgeship.core.config import Config
from edgeship.core.errors import BadInput

JOB_THREADS_ENV = "EDGESHIP_JOB_THREADS"


@dataclasses.dataclass(frozen=True)
class ExecutorConfig(Config):
    """Which executor runs a sweep's jobs, where (Ray's address) and how many at once."""

    kind: ClassVar[str] = "executor"

    executor: Literal["local", "sequential", "ray"] = "local"
    address: str | None = None  # Ray: HOST:PORT of the head (``ray start --head`` prints it), or "auto"
    workers: int | None = None  # local: processes (default: usable cores); ray: tasks at once (default: CPUs)

    def validate(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise BadInput(f"--workers {self.workers}: give at least 1")
        if self.executor == "ray" and not self.address:
            raise BadInput("--executor ray needs --address HOST:PORT of the Ray head (ray start --head prints it)")
        if self.address and self.executor != "ray":
            raise BadInput(f"--address is for --executor ray, not {self.executor}")


_THIS_THREAD = threading.local()  # the in-process slot's thread count


def job_threads() -> int | None:
    """The runtime threads a job may use here (None: the runtime's default)."""
    value = getattr(_THIS_THREAD, "threads", None) or os.environ.get(JOB_THREADS_ENV)
    return int(value) if value else None


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shared(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run a job under the shared timing lock (no benchmark on this machine meanwhile)."""
    from edgeship.bench.lock import timing_lock

    with timing_lock(exclusive=False):
        return fn(*args)


def _alone(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    from edgeship.bench.lock import timing_lock

    with timing_lock(exclusive=True):
        return fn(*args)


def _done(fn: Callable[..., Any], args: tuple[Any, ...]) -> cf.Future[Any]:
    fut: cf.Future[Any] = cf.Future()
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # the caller sees it from .result(), as from a pool
        fut.set_exception(exc)
    return fut


class Executor:
    """Runs jobs: :meth:`submit` (independent, maybe in parallel) and :meth:`alone` (timed)."""

    name: ClassVar[str] = ""
    workers: int = 1
    alone_s: float = 0.0  # wall time spent in alone() so far

    def alone(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run a timed job with nothing else of edgeship on its machine; returns its result."""
        t0 = time.perf_counter()
        try:
            return self._alone(fn, args)
        finally:
            self.alone_s += time.perf_counter() - t0

    def _alone(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return _alone(fn, args)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        """Start an independent job; its result comes from the future."""
        return _done(_shared, (fn, args))

    @property
    def parallel(self) -> bool:
        return self.workers > 1

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def warm(self, prepare: Callable[..., Any] | None = None, *args: Any) -> None:
        """Start workers ahead of the first job (while this process does other work); each worker
        then runs ``prepare(*args)`` (loading what the jobs will use)."""

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequentialExecutor(Executor):
    name = "sequential"


# What a pool worker imports before its first job (the forkserver loads the lighter ones for all).
WARM_MODULES = ("edgeship.pipeline.quantize_variants", "edgeship.compress.quantize.api", "edgeship.check.comparator",
                "edgeship.targets.onnxruntime.runner")


def _warm_worker(prepare: Callable[..., Any] | None, args: tuple[Any, ...]) -> None:
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    if prepare is not None:
        prepare(*args)


def _init_worker(threads: int) -> None:
    """A pool worker: quiet (the sweep's own bar reports), and ``threads`` runtime threads per job."""
    from edgeship.core.progress import set_quiet

    set_quiet(True)
    os.environ[JOB_THREADS_ENV] = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """While starting workers: they import the jobs' modules, never the caller's main script (which
    need not guard its top level with ``if __name__ == "__main__"``, as multiprocessing would want)."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


class LocalExecutor(Executor):
    """``workers`` job slots on this machine: one in this process, which has the sweep's model,
    source and imports loaded already, and the others in worker processes (forkserver: each starts
    from a clean, preloaded interpreter, not a copy of this one with its runtime thread pools). A
    free slot takes the next job; every job gets ``cores // workers`` runtime threads.

    The in-process slot is why a small sweep is not slower than one process: a worker first pays
    its imports and loads the source, while this process runs jobs at once."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or usable_cores())
        self.threads = max(1, usable_cores() // self.workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[cf.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] | None = None

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["edgeship.pipeline.optimize", "onnxruntime", "onnx", "numpy"])
                self._pool = cf.ProcessPoolExecutor(self.workers - 1, mp_context=ctx, initializer=_init_worker,
                                                    initargs=(self.threads,))
                weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)  # on an early error
            return self._pool

    def _pool_submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> cf.Future[Any]:
        pool = self._get_pool()
        with self._pool_lock, _main_not_reimported():  # the pool may start a worker here
            return pool.submit(_shared, fn, args)

    def _slot(self, index: int, jobs: queue.SimpleQueue[Any]) -> None:
        """One slot's loop: slot 0 runs each job in this process, the others hand theirs to a worker."""
        if index == 0:
            from edgeship.core.progress import quiet_thread

            quiet_thread()  # like a worker: the sweep's own bar and status lines report
            _THIS_THREAD.threads = self.threads
            if "torch" in sys.modules:  # torch's OpenMP threads are per calling thread
                sys.modules["torch"].set_num_threads(self.threads)
        while (item := jobs.get()) is not None:
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = _shared(fn, args) if index == 0 else self._pool_submit(fn, args).result()
            except BaseException as exc:  # the caller sees it from .result(), as from a pool
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        if not self.parallel:
            return super().submit(fn, *args)
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            for index in range(self.workers):  # daemon threads: an interrupted sweep does not wait for them
                threading.Thread(target=self._slot, args=(index, self._queue), name=f"edgeship-slot-{index}",
                                 daemon=True).start()
        fut: cf.Future[Any] = cf.Future()
        self._queue.put((fut, fn, args))
        return fut

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads_per_job": self.threads if self.parallel else None}

    def warm(self, prepare: Callable[..., Any] | None = None, *args: Any) -> None:
        if self.parallel:
            for _ in range(self.workers - 1):  # under the shared lock: a timed build waits for the imports
                self._pool_submit(_warm_worker, (prepare, args))

    def close(self) -> None:
        if self._queue is not None:
            while True:  # jobs not started: cancelled; the slots stop after their current one
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
            for _ in range(self.workers):
                self._queue.put(None)
            self._queue = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _ray_quiet() -> None:
    from edgeship.core.progress import set_quiet

    set_quiet(True)


def _ray_shared(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    _ray_quiet()
    return _shared(fn, args)


def _ray_alone(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    _ray_quiet()
    return _alone(fn, args)


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on an address where no Ray head listens (ray.init would retry for minutes)."""
    import socket

    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot reach the Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
                       "and give the address it prints (HOST:PORT)") from None


class RayExecutor(Executor):
    """Tasks on a running Ray cluster. Independent jobs take one CPU each; a timed job takes every CPU
    of the timing node (the driver's node when it is in the cluster, else the first alive node)."""

    name = "ray"

    def __init__(self, address: str, workers: int | None = None) -> None:
        if _is_loopback(address):
            # Ray would otherwise advertise the machine's network address; loopback stays loopback.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ModuleNotFoundError:
            raise BadInput("--executor ray needs Ray: pip install 'edgeship[ray]'") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            _probe(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise BadInput(f"cannot reach the Ray cluster at {address!r} ({first}); start one with "
                               "`ray start --head` and give the address it prints") from None
        self.address = address
        alive = [n for n in ray.nodes() if n.get("Alive")]
        cpus = int(sum(n.get("Resources", {}).get("CPU", 0) for n in alive))
        self.workers = max(1, workers or cpus)
        here = ray.get_runtime_context().get_node_id()
        node = next((n for n in alive if n["NodeID"] == here), None) or sorted(alive, key=lambda n: n["NodeID"])[0]
        self.timing_node = node["NodeID"]
        self.timing_cpus = max(1.0, float(node.get("Resources", {}).get("CPU", 1)))
        self.nodes = len(alive)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        task = self._ray.remote(_ray_shared).options(num_cpus=1, max_retries=1)
        return task.remote(fn, args).future()

    def _alone(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = self._ray.remote(_ray_alone).options(
            num_cpus=self.timing_cpus, max_retries=1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.timing_node, soft=False))
        return self._ray.get(task.remote(fn, args))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "address": self.address, "nodes": self.nodes,
                "timing_node": self.timing_node[:12], "timing_cpus": self.timing_cpus}

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


# Each executor by its config's name: how it is made from the config.
MAKERS: dict[str, Callable[[ExecutorConfig], Executor]] = {
    "local": lambda c: LocalExecutor(c.workers),
    "sequential": lambda c: SequentialExecutor(),
    "ray": lambda c: RayExecutor(str(c.address), c.workers),
}


def make_executor(config: ExecutorConfig | None = None) -> Executor:
    """The executor a config names (default: local processes)."""
    config = config or ExecutorConfig()
    return MAKERS[config.executor](config)
