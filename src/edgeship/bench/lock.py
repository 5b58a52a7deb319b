"""The machine's timing lock: a benchmark holds it exclusively, other edgeship jobs (an optimize
sweep's builds, conversions and checks, in any process, of any sweep) hold it shared, so no
benchmark runs beside them on the same machine and its timings stay clean.

It is an advisory ``flock`` on one file in the temporary folder (``EDGESHIP_TIMING_LOCK`` names
another). A process takes it once however deeply it nests; a process holding it shared that asks
for it exclusively converts its lock (and back afterwards).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgeship.core.progress import status

_state: dict[str, int | None] = {"fd": None, "exclusive": 0, "shared": 0}


def lock_path() -> Path:
    return Path(os.environ.get("EDGESHIP_TIMING_LOCK") or Path(tempfile.gettempdir()) / "edgeship-timing.lock")


def _flock(fd: int, mode: int, what: str) -> None:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        status(f"  waiting: other edgeship work is running on this machine ({lock_path()}); {what} starts when it ends")
        fcntl.flock(fd, mode)


@contextlib.contextmanager
def timing_lock(exclusive: bool) -> Iterator[None]:
    """Hold the machine's timing lock: ``exclusive`` to time, shared for any other job."""
    key = "exclusive" if exclusive else "shared"
    held_ex, held_sh = bool(_state["exclusive"]), bool(_state["shared"])
    if held_ex or (held_sh and not exclusive):  # already held strongly enough by this process
        _state[key] = int(_state[key] or 0) + 1
        try:
            yield
        finally:
            _state[key] = int(_state[key] or 0) - 1
        return
    if _state["fd"] is None:
        _state["fd"] = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o666)
    fd = int(_state["fd"])
    _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, "timing" if exclusive else "this job")
    _state[key] = 1
    try:
        yield
    finally:
        _state[key] = 0
        if held_sh:  # converted from shared: back to shared
            fcntl.flock(fd, fcntl.LOCK_SH)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            _state["fd"] = None
