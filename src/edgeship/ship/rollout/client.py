"""``RolloutClient``: what agents and operators (``ship rollout``, ``ship status``, ``ship publish
--rollout``) use to talk to the rollout service, with a timeout on every call."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.tokens import read_optional_token


class RolloutClient:
    """One rollout service at ``url``, with the operator or device ``token`` (None: an open service)."""

    def __init__(self, url: str, timeout: float = 10.0, token: str | None = None,
                 ca_file: str | Path | None = None) -> None:
        import urllib3

        self.url = url.rstrip("/")
        self.token = token
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._http = _pool(str(ca_file) if ca_file else None)

    def _call(self, method: str, path: str, body: Any = None, fields: dict[str, Any] | None = None) -> Any:
        kwargs: dict[str, Any] = {"timeout": self.timeout, "retries": False}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            kwargs["body"] = json.dumps(body, default=str).encode()
            headers["Content-Type"] = "application/json"
        if headers:
            kwargs["headers"] = headers
        if fields:
            kwargs["fields"] = {k: v for k, v in fields.items() if v is not None}
        import urllib3

        try:
            resp = self._http.request(method, self.url + path, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise BadInput(f"cannot reach the rollout service at {self.url} ({type(reason).__name__}); "
                           "is `edgeship ship rollout-server` running there?") from None
        try:
            data = json.loads(resp.data or b"null")
        except json.JSONDecodeError:
            data = {"detail": f"HTTP {resp.status}"}
        if resp.status == 401:
            raise BadInput(f"the rollout service at {self.url} refused the request: missing or wrong access token "
                           "(give --token-file with the operator or device token)")
        if resp.status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else data
            raise BadInput(f"rollout service: {detail} (HTTP {resp.status})")
        return data

    # -- devices ---------------------------------------------------------------------------------
    def assign(self, device_id: str, model: str, channel: str, active_target: str | None,
               agent_version: str | None = None) -> dict[str, Any]:
        """Which release this device should run (see ``RolloutStore.assign``)."""
        return self._call("GET", "/v1/assignment", fields={  # type: ignore[no-any-return]
            "device_id": device_id, "model": model, "channel": channel, "active_target": active_target,
            "agent_version": agent_version})

    def report(self, outcome: Outcome) -> dict[str, Any]:
        return self._call("POST", "/v1/reports", body=outcome.to_dict())  # type: ignore[no-any-return]

    def telemetry(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Send telemetry reports of one device (``edgeship.ship.telemetry``): accepted, duplicates."""
        return self._call("POST", "/v1/telemetry", body={"reports": reports})  # type: ignore[no-any-return]

    # -- operators -------------------------------------------------------------------------------
    def start(self, cfg: RolloutConfig) -> dict[str, Any]:
        return self._call("POST", "/v1/rollouts", body=cfg.to_dict())  # type: ignore[no-any-return]

    def action(self, rid: int, action: str) -> dict[str, Any]:
        """``advance``, ``halt`` or ``resume`` rollout ``rid``."""
        return self._call("POST", f"/v1/rollouts/{rid}/{action}")  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")  # type: ignore[no-any-return]

    def put_profile(self, target: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Give the service a release's reference profile (what drift is measured against)."""
        return self._call("PUT", "/v1/profiles", body={"target": target, "profile": profile})  # type: ignore[no-any-return]

    def drift(self, target: str, rollout: int | None = None) -> dict[str, Any]:
        """Drift of a release's telemetry against its reference profile (over a rollout's cohort)."""
        return self._call("GET", "/v1/drift", fields={"target": target, "rollout": rollout})  # type: ignore[no-any-return]

    def health(self) -> bool:
        return bool(self._call("GET", "/v1/health").get("ok"))


def connect(url: str, token_file: str | Path | None = None, timeout: float = 10.0,
            ca_file: str | Path | None = None) -> RolloutClient:
    """A client of the service at ``url`` presenting the token in ``token_file`` (none: no token);
    an https URL is verified against ``ca_file`` (a PEM bundle) or the system's certificates."""
    return RolloutClient(url, timeout=timeout, token=read_optional_token(token_file), ca_file=ca_file)


_POOLS: dict[str | None, Any] = {}
_POOL_LOCK = threading.Lock()


def _pool(ca_file: str | None = None) -> Any:
    """One connection pool per process and CA bundle (the fleet simulation runs many agents in threads)."""
    with _POOL_LOCK:
        if ca_file not in _POOLS:
            import urllib3

            _POOLS[ca_file] = urllib3.PoolManager(maxsize=64, block=False, ca_certs=ca_file)
        return _POOLS[ca_file]
