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

import collections
import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
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


def _alone(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
    """The job's result and the seconds it ran holding the machine (the wait for it is other jobs')."""
    from edgeship.bench.lock import timing_lock

    with timing_lock(exclusive=True):
        t0 = time.perf_counter()
        return fn(*args), time.perf_counter() - t0


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
    alone_s: float = 0.0  # seconds timed jobs have run so far, each holding its machine

    def alone(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run a timed job with nothing else of edgeship on its machine; returns its result."""
        result, held_s = self._alone(fn, args)
        self.alone_s += held_s
        return result

    def _alone(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
        return _alone(fn, args)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        """Start an independent job; its result comes from the future."""
        return _done(_shared, (fn, args))

    def submit_beside(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        """Start a job beside this process's own work (the sweep's export): where the executor is
        parallel, on a worker, never in this process's slot, and at once; else as :meth:`submit`."""
        return self.submit(fn, *args)

    @property
    def parallel(self) -> bool:
        return self.workers > 1

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def warm(self, prepare: Callable[..., Any] | None = None, *args: Any) -> None:
        """Start workers ahead of the first job (while this process does other work); each worker
        then runs ``prepare(*args)`` (loading what the jobs will use)."""

    def close(self, abort: bool = False) -> None:
        """Release what the executor started; ``abort`` (the sweep failed or was interrupted): stop
        running jobs too, rather than wait for them."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(abort=kind is not None)


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


_Job = tuple[cf.Future[Any], Callable[..., Any], tuple[Any, ...]]


class _JobBoard:
    """The local executor's queued jobs. Every slot takes the oldest job; a worker's slot first takes
    one meant for a worker (its preparation)."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._any: collections.deque[_Job] = collections.deque()
        self._workers_only: collections.deque[_Job] = collections.deque()
        self._closed = False

    def put(self, job: _Job, workers_only: bool = False) -> None:
        with self._ready:
            (self._workers_only if workers_only else self._any).append(job)
            self._ready.notify_all()

    def take(self, in_process: bool) -> _Job | None:
        """The next job for a slot (None: the board is closed)."""
        with self._ready:
            while True:
                if self._workers_only and not in_process:
                    return self._workers_only.popleft()
                if self._any:
                    return self._any.popleft()
                if self._closed:
                    return None
                self._ready.wait()

    def close(self) -> None:
        """No more jobs: the queued ones are cancelled; each slot stops after its current job."""
        with self._ready:
            self._closed = True
            for job in (*self._any, *self._workers_only):
                job[0].cancel()
            self._any.clear()
            self._workers_only.clear()
            self._ready.notify_all()


class LocalExecutor(Executor):
    """``workers`` job slots on this machine: one in this process, which has the sweep's model,
    source and imports loaded already, and the others in worker processes (forkserver: each starts
    from a clean, preloaded interpreter, not a copy of this one with its runtime thread pools). A
    free slot takes the oldest job; every job gets ``cores // workers`` runtime threads.

    The in-process slot is why a small sweep is not slower than one process: a worker first pays
    its imports and loads the source, while this process runs jobs at once. It opens with the first
    :meth:`submit`: until then the process is busy with its own work (the sweep's export) and only
    the workers take jobs (:meth:`warm`'s preparation, :meth:`submit_beside`'s builds)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or usable_cores())
        self.threads = max(1, usable_cores() // self.workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._board: _JobBoard | None = None
        self._slots: dict[int, threading.Thread] = {}  # the slots started, by index

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

    def _slot(self, index: int, board: _JobBoard) -> None:
        """One slot's loop: slot 0 runs each job in this process, the others hand theirs to a worker
        (from this thread: the pool's first start waits for the forkserver's preloads, 0.6 s)."""
        if index == 0:
            from edgeship.core.progress import quiet_thread

            quiet_thread()  # like a worker: the sweep's own bar and status lines report
            _THIS_THREAD.threads = self.threads
            if "torch" in sys.modules:  # torch's OpenMP threads are per calling thread
                sys.modules["torch"].set_num_threads(self.threads)
        while (job := board.take(in_process=index == 0)) is not None:
            fut, fn, args = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = _shared(fn, args) if index == 0 else self._pool_submit(fn, args).result()
            except BaseException as exc:  # the caller sees it from .result(), as from a pool
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def _put(self, fn: Callable[..., Any], args: tuple[Any, ...], in_process: bool,
             workers_only: bool = False) -> cf.Future[Any]:
        """Queue a job; start the workers' slots, and this process's slot where ``in_process``."""
        if self._board is None:
            self._board = _JobBoard()
        wanted = range(self.workers) if in_process else range(1, self.workers)
        for index in set(wanted) - set(self._slots):  # daemon threads: an interrupted sweep does not wait for them
            self._slots[index] = threading.Thread(target=self._slot, args=(index, self._board),
                                                  name=f"edgeship-slot-{index}", daemon=True)
            self._slots[index].start()
        fut: cf.Future[Any] = cf.Future()
        self._board.put((fut, fn, args), workers_only)
        return fut

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        if not self.parallel:
            return super().submit(fn, *args)
        return self._put(fn, args, in_process=True)

    def submit_beside(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        if not self.parallel:
            return super().submit_beside(fn, *args)
        return self._put(fn, args, in_process=False)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads_per_job": self.threads if self.parallel else None}

    def warm(self, prepare: Callable[..., Any] | None = None, *args: Any) -> None:
        if self.parallel:
            for _ in range(self.workers - 1):  # under the shared lock: a timed build waits for the imports
                self._put(_warm_worker, (prepare, args), in_process=False, workers_only=True)

    def close(self, abort: bool = False) -> None:
        if self._board is not None:
            self._board.close()
        if self._pool is not None:
            if abort:  # a failed or interrupted sweep does not wait for a worker's long fine-tune
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for index, slot in self._slots.items():  # the workers' slots end with the pool, their futures settled
            if index:
                slot.join(timeout=30)
        self._board, self._slots = None, {}


def _ray_quiet() -> None:
    from edgeship.core.progress import set_quiet

    set_quiet(True)


def _ray_shared(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    _ray_quiet()
    return _shared(fn, args)


def _ray_alone(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
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

    def _alone(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = self._ray.remote(_ray_alone).options(
            num_cpus=self.timing_cpus, max_retries=1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.timing_node, soft=False))
        return self._ray.get(task.remote(fn, args))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "address": self.address, "nodes": self.nodes,
                "timing_node": self.timing_node[:12], "timing_cpus": self.timing_cpus}

    def close(self, abort: bool = False) -> None:
        if self._started and self._ray.is_initialized():  # its tasks end with the driver's job
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
