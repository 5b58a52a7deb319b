"""What the rollout service accepts: bounds on request bodies, field lengths, the devices one token
may speak for, and the reports of one device per minute; the rest is refused with a clear status
(413 too large, 422 malformed or too long, 403 a token over its devices, 429 too many reports).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from edgeship.core.config import Config
from edgeship.core.errors import BadInput

DEVICE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


@dataclasses.dataclass(frozen=True)
class ServiceLimits(Config):
    kind: ClassVar[str] = "rollout-limits"
    max_body_bytes: int = 1 << 20  # one request body (a telemetry batch is the largest)
    max_device_id: int = 128  # characters
    max_field: int = 1024  # characters of any other text field (target, version, ...)
    max_detail: int = 4096  # characters of an outcome's detail
    max_devices_per_token: int = 100_000  # distinct device ids one device token speaks for
    reports_per_minute: int = 60  # outcome reports of one device per minute
    telemetry_per_minute: int = 30  # telemetry requests of one device per minute
    max_reports_per_batch: int = 100  # telemetry reports in one request

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise BadInput(f"service limit {f.name} must be at least 1")


class Refused(Exception):
    """A request over a bound: the HTTP status and a one-line reason."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def token_digest(token: str | None) -> str | None:
    """What the store keeps of a device token: a digest (never the token)."""
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()[:16]


def check_device_id(device_id: Any, limits: ServiceLimits) -> str:
    if not isinstance(device_id, str) or not device_id:
        raise Refused(422, "device_id: give the device's id")
    if len(device_id) > limits.max_device_id:
        raise Refused(422, f"device_id of {len(device_id)} characters: at most {limits.max_device_id}")
    if not set(device_id) <= DEVICE_ID_CHARS:
        raise Refused(422, "device_id: use letters, digits, '-', '_', '.', ':'")
    return device_id


def check_fields(body: Mapping[str, Any], limits: ServiceLimits, long_fields: tuple[str, ...] = ("detail",)) -> None:
    """Every text field of ``body`` (one level down too) within its bound."""
    for key, value in body.items():
        if isinstance(value, Mapping):
            check_fields(value, limits, ())
            continue
        if isinstance(value, str):
            bound = limits.max_detail if key in long_fields else limits.max_field
            if len(value) > bound:
                raise Refused(422, f"{key} of {len(value)} characters: at most {bound}")
        if len(str(key)) > limits.max_field:
            raise Refused(422, f"a key of {len(str(key))} characters: at most {limits.max_field}")


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 seconds (a sliding window of timestamps)."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str) -> None:
        now = self.clock()
        with self._lock:
            q = self._seen.setdefault(key, collections.deque())
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= self.per_minute:
                raise Refused(429, f"{what}: at most {self.per_minute} a minute per device; try again later",
                              retry_after=max(1.0, 60 - (now - q[0])))
            q.append(now)
            if len(self._seen) > 200_000:  # forget idle devices rather than grow without end
                for k in [k for k, v in self._seen.items() if not v or now - v[-1] >= 60][:100_000]:
                    del self._seen[k]


class TokenDevices:
    """The device ids each device token spoke for; a token at its bound cannot add another."""

    def __init__(self, limit: int, known: Mapping[str, str | None] | None = None) -> None:
        self.limit = limit
        self._by_token: dict[str, set[str]] = collections.defaultdict(set)
        self._lock = threading.Lock()
        for device, digest in (known or {}).items():
            if digest:
                self._by_token[digest].add(device)

    def admit(self, digest: str | None, device_id: str) -> None:
        if digest is None:  # an open service or an operator's token
            return
        with self._lock:
            devices = self._by_token[digest]
            if device_id in devices:
                return
            if len(devices) >= self.limit:
                raise Refused(403, f"this device token already speaks for {len(devices)} devices (the limit); "
                                   "give new devices a token of their own")
            devices.add(device_id)
