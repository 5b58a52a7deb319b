"""OpenVINO and NNCF without their telemetry.

``import openvino`` reports the import to Google Analytics and NNCF reports every quantization
(``openvino_telemetry``: a client-ID file in ``~/intel`` and a request from a background thread or a
forked process), unless the user opted out system-wide or the process looks like a CI job. edgeship
sends nothing: before either is imported, the opt-in check of this process answers "declined" —
nothing is written, nothing is sent. ``tests/targets/test_offline.py`` runs the conversions with the
network blocked and fails on any connection attempt, so a library update that bypasses this shows.
"""

from __future__ import annotations

from types import ModuleType

from edgeship.core.registry import is_installed, require


def decline_telemetry() -> None:
    """Make openvino_telemetry's opt-in check answer "declined" in this process (idempotent)."""
    if not is_installed("openvino_telemetry"):
        return
    from openvino_telemetry.utils import opt_in_checker

    checker = opt_in_checker.OptInChecker
    if getattr(checker, "_edgeship_declined", False):
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    checker.check = lambda self, *args, **kwargs: declined  # type: ignore[method-assign]
    checker._edgeship_declined = True  # type: ignore[attr-defined]


def openvino() -> ModuleType:
    """``openvino``, imported with its telemetry declined."""
    decline_telemetry()
    return require("openvino", "openvino")


def nncf() -> ModuleType:
    """``nncf``, imported with its telemetry declined."""
    decline_telemetry()
    return require("nncf", "openvino")
