"""The ``edgeship`` command line: a thin layer that parses arguments, builds the same typed configs
the Python API takes, calls the API, and maps errors to exit codes (0 ok, 1 gate failed, 2 bad
input or usage, 3 internal error).

Each command lives in its own module under ``edgeship.cli`` with ``register(subparsers)`` and
``run(args) -> int``; command modules import nothing heavy at module level, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

# Command modules in the order ``--help`` lists them.
COMMAND_MODULES = [
    "edgeship.cli.export_cmd",
    "edgeship.cli.quantize_cmd",
    "edgeship.cli.compress_cmd",
    "edgeship.cli.convert_cmd",
    "edgeship.cli.map_cmd",
    "edgeship.cli.check_cmd",
    "edgeship.cli.bench_cmd",
    "edgeship.cli.optimize_cmd",
    "edgeship.cli.inspect_cmd",
    "edgeship.cli.ship_cmd",
    "edgeship.cli.agent_cmd",
]

EPILOG = """\
exit codes: 0 ok · 1 an accuracy/parity gate failed · 2 bad input or usage · 3 internal error

examples:
  edgeship export zoo:digits-cnn -o digits.onnx
  edgeship check zoo:digits-cnn digits.onnx --data data:digits-test
  edgeship bench digits.onnx --data data:digits-test --batch 64
  edgeship optimize --model zoo:minilm --data data:sentences --out runs/minilm
"""


def build_parser() -> argparse.ArgumentParser:
    from edgeship import __version__

    parser = argparse.ArgumentParser(
        prog="edgeship",
        description="Make trained networks ready for on-device inference: compress, export to ONNX, convert "
                    "per target, check against golden outputs on the target runtime, benchmark, ship.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgeship {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show what the libraries edgeship drives print (banners, their progress bars, notes)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:  # a command not built yet
                continue
            raise
        mod.register(sub)
    _add_quiet(sub)
    return parser


def _add_quiet(sub: argparse._SubParsersAction) -> None:
    """``--quiet`` on every command (and sub-command) that has none of its own: no progress or status
    lines on stderr; results (tables, ``--json``) still print."""
    for parser in sub.choices.values():
        if "--quiet" not in parser._option_string_actions:
            parser.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_quiet(action)


def main(argv: Sequence[str] | None = None) -> int:
    from edgeship.core.errors import EdgeshipError

    parser = build_parser()
    args = parser.parse_args(argv)
    from edgeship.core.logs import configure

    configure(verbose=bool(getattr(args, "verbose", False)))  # before any back-end is imported
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from edgeship.core import progress

    was_quiet = progress.is_quiet()
    progress.set_quiet(was_quiet or bool(getattr(args, "quiet", False)))
    try:
        return int(args.func(args) or 0)
    except EdgeshipError as exc:
        print(f"edgeship: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError as exc:
        if _stdout_closed():  # output piped into `head` and closed early: not an error
            return 0
        print(f"edgeship: error: connection closed by the other side ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeship: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line, with the traceback on request
        if os.environ.get("EDGESHIP_DEBUG"):
            raise
        print(f"edgeship: internal error: {type(exc).__name__}: {exc} (set EDGESHIP_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 3
    finally:
        progress.set_quiet(was_quiet)


def _stdout_closed() -> bool:
    """True when our stdout is a pipe whose reader went away (``edgeship ... | head``); then later
    writes, at interpreter exit too, go to /dev/null instead of raising again."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        broken = any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
    if broken:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return broken


def entry() -> None:
    sys.exit(main())
