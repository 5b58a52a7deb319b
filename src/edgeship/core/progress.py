"""Progress bars and status lines on stderr (rich), quiet when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``; shows a bar on a terminal, nothing otherwise."""
    if not _interactive():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda: prog.advance(task)


def status(message: str) -> None:
    """A one-line status message on stderr."""
    print(message, file=sys.stderr, flush=True)
