"""Progress bars (with the time remaining) and status lines on stderr (rich): bars only on a
terminal; nothing at all when quiet (``--quiet``, or ``EDGESHIP_QUIET=1``, which worker processes
inherit).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

QUIET_ENV = "EDGESHIP_QUIET"
_THIS_THREAD = threading.local()


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) progress bars and status lines, in this process and those it starts."""
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def quiet_thread() -> None:
    """Silence progress and status lines from the calling thread only (a job slot beside the sweep's bar)."""
    _THIS_THREAD.quiet = True


def is_quiet() -> bool:
    return getattr(_THIS_THREAD, "quiet", False) or os.environ.get(QUIET_ENV, "") not in ("", "0")


def _interactive() -> bool:
    return sys.stderr.isatty() and not is_quiet()


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``; shows a bar with the count, elapsed and remaining time on a terminal,
    nothing otherwise."""
    if not _interactive():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda: prog.advance(task)


def status(message: str) -> None:
    """A one-line status message on stderr (none when quiet)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)
