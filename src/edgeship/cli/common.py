"""Argument helpers shared by commands (data and shape options, JSON output)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", required=required, metavar="DATA",
                   help="data:NAME[:SPLIT] (data:images, data:sentences, data:digits-test, data:synthetic), "
                        "an .npz file with arrays named like the inputs, or a folder of .npy files")
    p.add_argument("--shape", action="append", default=[], metavar="NAME:D0,D1,...",
                   help="fix an input's shape for synthetic data, e.g. --shape input:1,3,320,320 (repeatable)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N samples")


def console() -> Any:
    """A rich console on stdout; wide when piped so tables are never cut."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")


def print_json(obj: Any) -> None:
    from edgeship.core.atomic import _json_default

    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def with_status(fn: Callable[[Callable[[str], None]], T], quiet: bool, label: str) -> T:
    """Run ``fn(say)`` with each ``say(step)`` shown on stderr behind a spinner (rich), so stdout stays
    the result; silent when ``quiet`` (``--json``) or stderr is not a terminal."""
    from rich.console import Console

    from edgeship.core.progress import is_quiet

    err = Console(stderr=True)
    if quiet or is_quiet() or not err.is_terminal:
        return fn(lambda msg: None)
    with err.status(label) as status:
        return fn(lambda msg: status.update(msg))
