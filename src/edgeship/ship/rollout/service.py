"""The rollout service: a FastAPI application over a :class:`RolloutStore`, where agents ask which
release to run and report what happened, and operators start and steer rollouts.

Operators present the admin token, devices the device token (see :mod:`edgeship.ship.rollout.tokens`).
``RolloutServer`` serves it with uvicorn in a thread; ``RolloutProcess`` in a process of its own.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.limits import (
    RateLimiter,
    Refused,
    ServiceLimits,
    TokenDevices,
    check_device_id,
    check_fields,
    token_digest,
)
from edgeship.ship.rollout.store import RolloutStore
from edgeship.ship.rollout.tokens import AccessTokens, check_exposure
from edgeship.ship.tls import tls_files


def _actions(store: RolloutStore) -> dict[str, Callable[[int], dict[str, Any]]]:
    """What an operator may do to a rollout, by the name in ``POST /v1/rollouts/{id}/{action}``."""
    return {"advance": store.advance,
            "halt": lambda rid: store.set_status(rid, "halted", "by hand"),
            "resume": lambda rid: store.set_status(rid, "active", "by hand")}


class BodyLimit:
    """ASGI middleware refusing a request body over ``max_bytes`` with 413 before it is read whole
    (by its Content-Length, or by counting a chunked body as it arrives)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
        from fastapi import HTTPException

        seen = 0

        async def counted() -> dict[str, Any]:
            # A chunked body is counted as it arrives; FastAPI answers the exception raised here
            # while it reads the body with its status.
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(status_code=413, detail=f"request body over {self.max_bytes} bytes")
            return message  # type: ignore[no-any-return]

        await self.app(scope, counted, send)


async def _refuse(send: Any, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(db: str | Path, tokens: AccessTokens | None = None, limits: ServiceLimits | None = None) -> Any:
    """The FastAPI application over a RolloutStore at ``db`` (a SQLite path or a database URL)."""
    from edgeship.core.registry import require

    require("fastapi", "ship", "FastAPI")
    from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

    from edgeship.ship.rollout import dashboard
    from edgeship.ship.telemetry import Aggregate

    tokens = tokens or AccessTokens()
    limits = limits or ServiceLimits()
    store = RolloutStore(db)
    actions = _actions(store)
    app = FastAPI(title="edgeship rollout service", version="1", docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.ingest = IngestClock()
    per_token = TokenDevices(limits.max_devices_per_token, store.device_tokens())
    report_rate = RateLimiter(limits.reports_per_minute)
    telemetry_rate = RateLimiter(limits.telemetry_per_minute)

    @app.exception_handler(Refused)
    def refused(_request: Any, exc: Refused) -> Any:
        headers = {"Retry-After": str(round(exc.retry_after))} if exc.retry_after else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    def answer(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What ``call`` returns; bad input becomes a 400 carrying its one-line message."""
        try:
            return call()
        except BadInput as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    def _requires(*allowed: str | None) -> Any:
        """A dependency accepting the bearer tokens of the given roles (an open role accepts anyone);
        it gives the digest of the device token presented (None for an operator or an open role).
        A browser may present the token in the ``edgeship_token`` cookie instead."""
        def check(request: Request, authorization: str = Header(default="")) -> str | None:
            if any(t is None for t in allowed):
                return None
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer":
                value = request.cookies.get("edgeship_token", "")
            for t in allowed:
                if t and hmac.compare_digest(value.encode(), t.encode()):
                    return token_digest(t) if t == tokens.device and t != tokens.admin else None
            raise HTTPException(status_code=401, detail="missing or wrong access token for this request",
                                headers={"WWW-Authenticate": "Bearer"})
        # FastAPI resolves string annotations in this module's globals, where Request is not
        check.__annotations__["request"] = Request
        return Depends(check)

    operators = _requires(tokens.admin)
    devices = _requires(tokens.device, tokens.admin)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/rollouts", dependencies=[operators])
    def start(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        check_fields(body, limits)
        return answer(lambda: store.create(RolloutConfig.from_dict(body)))

    @app.post("/v1/rollouts/{rid}/{action}", dependencies=[operators])
    def act(rid: int, action: str) -> dict[str, Any]:
        if action not in actions:
            raise HTTPException(status_code=404, detail=f"unknown action {action!r}; use advance, halt or resume")
        return answer(lambda: actions[action](rid))

    @app.get("/v1/assignment")
    def assignment(device_id: str, model: str = "", channel: str = "stable", active_target: str | None = None,
                   agent_version: str | None = None, token: str | None = devices) -> dict[str, Any]:
        check_device_id(device_id, limits)
        check_fields({"model": model, "channel": channel, "active_target": active_target,
                      "agent_version": agent_version}, limits)
        per_token.admit(token, device_id)
        return store.assign(device_id, model, channel, active_target, agent_version, token=token)

    @app.post("/v1/reports")
    def report(body: dict[str, Any] = Body(...), token: str | None = devices) -> dict[str, Any]:  # noqa: B008
        device_id = check_device_id(body.get("device_id"), limits)
        check_fields(body, limits)
        per_token.admit(token, device_id)
        report_rate.hit(device_id, "outcome reports")
        return answer(lambda: store.report(Outcome.from_dict(body)))

    @app.post("/v1/telemetry")
    def telemetry(body: dict[str, Any] = Body(...), token: str | None = devices) -> dict[str, Any]:  # noqa: B008
        started = time.perf_counter()
        reports = body.get("reports")
        if not isinstance(reports, list) or not reports:
            raise Refused(422, "reports: give a list of telemetry reports")
        if len(reports) > limits.max_reports_per_batch:
            raise Refused(413, f"{len(reports)} reports in one request: at most {limits.max_reports_per_batch}")
        device_id = check_device_id(reports[0].get("device_id") if isinstance(reports[0], dict) else None, limits)
        aggs, ids, dropped = [], [], []
        for i, r in enumerate(reports):
            if not isinstance(r, dict) or r.get("device_id") != device_id:
                raise Refused(422, f"report {i}: every report of a request is from the same device")
            rid = r.get("report_id")
            if not isinstance(rid, str) or not 8 <= len(rid) <= 64:
                raise Refused(422, f"report {i}: report_id must be 8 to 64 characters")
            check_fields({"target": r.get("target"), "sha256": r.get("sha256")}, limits)
            try:
                agg = Aggregate.from_dict(r)
            except (ValueError, TypeError, KeyError) as exc:
                raise Refused(422, f"report {i}: {exc}") from None
            if not agg.target:
                raise Refused(422, f"report {i}: target: the release the report is about")
            aggs.append(agg)
            ids.append(rid)
            lost = r.get("dropped", 0)
            dropped.append(lost if isinstance(lost, int) and lost >= 0 else 0)
        per_token.admit(token, device_id)
        telemetry_rate.hit(device_id, "telemetry requests")
        result = store.ingest(device_id, aggs, ids, dropped)
        app.state.ingest.observe(time.perf_counter() - started, len(aggs))
        return result

    @app.put("/v1/profiles", dependencies=[operators])
    def profile(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        target, prof = body.get("target"), body.get("profile")
        if not isinstance(target, str) or not target or not isinstance(prof, dict):
            raise Refused(422, "give target (the release's target path) and profile (its reference profile)")
        check_fields({"target": target}, limits)
        return answer(lambda: store.put_profile(target, prof))

    @app.get("/v1/drift", dependencies=[operators])
    def drift(target: str, rollout: int | None = None) -> dict[str, Any]:
        cohort = None
        if rollout is not None:
            r = answer(lambda: store.rollout(rollout))
            cohort = store.cohort(r)
        return store.drift(target, cohort)

    @app.get("/v1/telemetry", dependencies=[operators])
    def series(target: str, bucket_s: float = 60.0) -> dict[str, Any]:
        return {"target": target, "series": store.telemetry_series(target, max(1.0, bucket_s))}

    @app.get("/v1/status", dependencies=[operators])
    def status() -> dict[str, Any]:
        return store.status()

    @app.get("/dashboard", dependencies=[operators], response_class=HTMLResponse)
    def page() -> Any:
        return HTMLResponse(dashboard.render(store))

    @app.get("/metrics", dependencies=[operators], response_class=PlainTextResponse)
    def metrics() -> Any:
        return PlainTextResponse(dashboard.prometheus(store, app.state.ingest),
                                 media_type="text/plain; version=0.0.4")

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


class IngestClock:
    """How long telemetry requests took to handle (for /metrics): a histogram of seconds."""

    BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

    def __init__(self) -> None:
        self.counts = [0] * (len(self.BOUNDS) + 1)
        self.total_s = 0.0
        self.requests = 0
        self.reports = 0
        self._lock = threading.Lock()

    def observe(self, seconds: float, reports: int) -> None:
        with self._lock:
            self.counts[next((i for i, b in enumerate(self.BOUNDS) if seconds <= b), len(self.BOUNDS))] += 1
            self.total_s += seconds
            self.requests += 1
            self.reports += reports


class RolloutServer:
    """uvicorn serving the app in a background thread (``start``) or in this one (``run``); HTTPS
    when given a certificate and its key (PEM files)."""

    def __init__(self, db: str | Path, host: str = "127.0.0.1", port: int = 0,
                 tokens: AccessTokens | None = None, insecure: bool = False, limits: ServiceLimits | None = None,
                 certfile: str | Path | None = None, keyfile: str | Path | None = None) -> None:
        import socket

        import uvicorn

        self.tokens = tokens or AccessTokens()
        check_exposure(host, self.tokens, insecure)
        tls = tls_files(certfile, keyfile)
        self.app = create_app(db, self.tokens, limits)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY: a response's head and body go out at once, not
        # 40 ms apart (Nagle's algorithm waiting for the client's delayed ACK).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"{'https' if tls else 'http'}://{self.host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, timeout_keep_alive=30, backlog=2048,
            ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None))
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> RolloutStore:
        return self.app.state.store  # type: ignore[no-any-return]

    def start(self, wait_s: float = 10.0) -> RolloutServer:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                        name=f"rollout-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("rollout server did not start")
            time.sleep(0.02)
        return self

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self.sock.close()
        self.store.close()

    def __enter__(self) -> RolloutServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_in_process(db: str, host: str, ports: Any, limits: dict[str, Any] | None) -> None:
    server = RolloutServer(db, host, 0, limits=ServiceLimits.from_dict(limits) if limits else None)
    ports.put(server.port)
    server.run()


class RolloutProcess:
    """The rollout service in its own process (a fleet simulation keeps it off the devices' GIL)."""

    def __init__(self, db: str | Path, host: str = "127.0.0.1", limits: ServiceLimits | None = None) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        self.proc = ctx.Process(target=_serve_in_process,
                                args=(str(db), host, ports, limits.to_dict() if limits else None), daemon=True)
        self.proc.start()
        self.port = int(ports.get(timeout=60))
        self.url = f"http://{host}:{self.port}"
        client = RolloutClient(self.url, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.health()
                break
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("rollout service process did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)
