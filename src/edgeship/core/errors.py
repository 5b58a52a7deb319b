"""Errors and the exit codes they map to.

Every error a user can cause is an :class:`EdgeshipError` whose message is one line naming the
problem and the fix. The CLI prints it and exits with ``exit_code``; anything else is a bug (exit 3).
"""

from __future__ import annotations


class EdgeshipError(Exception):
    """Base of all errors edgeship raises on purpose."""

    exit_code: int = 3


class BadInput(EdgeshipError):
    """The user gave something we cannot use: a missing or corrupt file, a wrong shape, bad data."""

    exit_code = 2


class UsageError(BadInput):
    """A wrong command-line or config value."""


class MissingDependency(BadInput):
    """An optional back-end is not installed."""

    def __init__(self, what: str, extra: str, cause: BaseException | None = None) -> None:
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(f"{what} is not installed{detail}; install it with: pip install 'edgeship[{extra}]'")
        self.extra = extra


class NotApplicable(BadInput):
    """A method that does not apply to this model (int4 weight-only on a model with no MatMul)."""


class GateFailed(EdgeshipError):
    """An accuracy or parity gate did not pass."""

    exit_code = 1


class NotRunnableHere(EdgeshipError):
    """A runtime that cannot run on this machine (no GPU, not macOS); never reported as passed."""

    exit_code = 2


class InternalError(EdgeshipError):
    exit_code = 3
