"""What one update cycle of a device came to: the ``Outcome`` the agent builds, stores in its state
file, reports to the rollout service (which parses and stores it) and the CLI prints.

On the wire and in ``edgeship agent run --json`` an outcome is a JSON object whose key ``outcome``
names its kind::

    {"outcome": "updated", "target": "models/m/2.0.0/model.onnx", "version": "2.0.0", "sha256": "…",
     "slot": "b", "health": {…}, "seconds": 1.2, "device_id": "cam-0001", "agent_version": "0.1.0",
     "active_target": "models/m/2.0.0/model.onnx", "active_version": "2.0.0"}

The keys of :data:`ALWAYS` are always there (``null`` when unknown); the others only when set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# Every kind an agent reports, and what it means.
KINDS: dict[str, str] = {
    "updated": "the new release passed its health check and is active",
    "up_to_date": "nothing to install this cycle",
    "reverted": "went back to the release in the other slot (a halted rollout)",
    "health_check_failed": "the new release failed its health check; the old one stays active",
    "rolled_back": "the new release failed after the switch; the previous one is active again",
    "rollback_failed": "the new release failed and no intact previous slot was left to return to",
    "rejected": "a file did not match its signed metadata",
    "incompatible": "the release is for another runtime or a newer agent",
    "download_failed": "the repository could not be reached or a download was cut",
    "metadata_rejected": "the repository's TUF metadata did not verify",
    "no_release": "the channel has no release of this model",
    "rollout_unreachable": "the rollout service could not be asked",
    "storage_failed": "the device's disk refused a write (full or read-only); the active model is untouched",
}
# What a rollout counts: successes, and failures of the release itself (unless transient).
SUCCESS = frozenset({"updated", "reverted"})
FAILURE = frozenset({"health_check_failed", "rolled_back", "rollback_failed", "rejected", "incompatible"})
# What ``edgeship agent run --once`` exits 0 on.
OK = SUCCESS | {"up_to_date"}

ALWAYS = ("outcome", "target", "seconds", "device_id", "agent_version", "active_target", "active_version")


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str  # a key of KINDS; "outcome" on the wire
    target: str | None = None  # the release's target path the cycle was about
    detail: str | None = None  # why, for anything but a plain success
    transient: bool | None = None  # a failure of the path (network), not of the release: retried
    version: str | None = None  # the release installed (updated)
    sha256: str | None = None
    slot: str | None = None
    skipped: str | None = None  # why an available release was not installed
    health: dict[str, Any] | None = None  # the health check's result (edgeship.ship.healthcheck)
    rollout: dict[str, Any] | None = None  # the rollout service's assignment this cycle followed
    seconds: float | None = None
    device_id: str | None = None
    agent_version: str | None = None
    active_target: str | None = None  # what the device runs after the cycle
    active_version: str | None = None
    report_error: str | None = None  # the report to the rollout service did not go through

    @property
    def ok(self) -> bool:
        """Updated, reverted or already up to date."""
        return self.kind in OK

    @property
    def succeeded(self) -> bool:
        return self.kind in SUCCESS

    @property
    def failed(self) -> bool:
        """A failure of the release, which a rollout counts against it (transient ones are not)."""
        return self.kind in FAILURE and not self.transient

    @property
    def rollout_id(self) -> int | None:
        rid = (self.rollout or {}).get("rollout")
        return int(rid) if isinstance(rid, int | str) and str(rid).isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            key = "outcome" if f.name == "kind" else f.name
            value = getattr(self, f.name)
            if value is not None or key in ALWAYS:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """An outcome from its JSON object (a report, a state file); unknown keys are ignored, so an
        older service reads a newer agent's reports."""

        def text(key: str) -> str | None:
            v = data.get(key)
            return None if v is None else str(v)

        seconds = data.get("seconds")
        return cls(
            kind=str(data.get("outcome") or "unknown"), target=text("target"), detail=text("detail"),
            transient=None if data.get("transient") is None else bool(data.get("transient")),
            version=text("version"), sha256=text("sha256"), slot=text("slot"), skipped=text("skipped"),
            health=data["health"] if isinstance(data.get("health"), dict) else None,
            rollout=data["rollout"] if isinstance(data.get("rollout"), dict) else None,
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            device_id=text("device_id"), agent_version=text("agent_version"), active_target=text("active_target"),
            active_version=text("active_version"), report_error=text("report_error"))
