"""Staged rollouts: a small FastAPI service over SQLite where agents ask which release to run and
report what happened.

A rollout moves one model on one channel from ``from_target`` to ``target`` through stages of
device percentages (default canary 1% → 10% → 50% → 100%). A device belongs to a stage's cohort
when the stable hash of (rollout id, device id) falls below the stage's percentage, so cohorts only
grow and a device never flips back and forth. The service advances a stage once enough of its cohort
reported, and halts the rollout by itself when the failure rate of the devices that reported exceeds
the threshold; a halted rollout sends every device back to ``from_target``.

With a rollout service, releases reach devices that already run a model only through rollouts;
a device with nothing installed takes the channel's current release.

The service chooses among releases only: every file a device installs is still verified through
TUF, so a compromised rollout server can at worst hold an update back or pick an older signed one.

Access: two bearer tokens, one for operators (start/advance/halt/resume rollouts, fleet status) and
one for devices (assignments, reports), so a device cannot steer rollouts and nobody without a token
can halt a fleet with forged failure reports. ``edgeship ship rollout-token FILE`` makes one. A
service without tokens is open: allowed on loopback (development), refused on other addresses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.config import Config
from edgeship.core.errors import BadInput

SUCCESS = {"updated", "reverted"}
FAILURE = {"health_check_failed", "rolled_back", "rollback_failed", "rejected", "incompatible"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,
  from_target TEXT, stages TEXT NOT NULL, stage INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
  failure_threshold REAL NOT NULL, advance_fraction REAL NOT NULL, min_reports INTEGER NOT NULL,
  created REAL NOT NULL, reason TEXT);
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY, model TEXT, channel TEXT, active_target TEXT, agent_version TEXT,
  last_seen REAL, last_outcome TEXT);
CREATE TABLE IF NOT EXISTS reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, rollout_id INTEGER, target TEXT,
  outcome TEXT NOT NULL, transient INTEGER NOT NULL DEFAULT 0, detail TEXT, active_target TEXT,
  at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id INTEGER, at REAL NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_rollout ON reports(rollout_id, device_id);
"""


@dataclasses.dataclass(frozen=True)
class RolloutConfig(Config):
    kind: ClassVar[str] = "rollout"
    model: str = ""
    channel: str = "stable"
    target: str = ""
    from_target: str | None = None
    stages: tuple[float, ...] = (1.0, 10.0, 50.0, 100.0)
    failure_threshold: float = 0.2  # halt when more than this fraction of the reports are failures
    advance_fraction: float = 0.9  # advance once this fraction of the stage's cohort reported
    min_reports: int = 2  # reports needed before a stage can halt (fewer when the cohort is smaller)

    def validate(self) -> None:
        if not self.model or not self.target:
            raise BadInput("a rollout needs --model NAME and --target TARGET_PATH")
        if not self.stages or any(not 0 < s <= 100 for s in self.stages) or list(self.stages) != sorted(self.stages):
            raise BadInput(f"stages {list(self.stages)}: give increasing percentages in (0, 100], e.g. 1,10,50,100")
        if self.stages[-1] != 100:
            raise BadInput(f"stages {list(self.stages)}: the last stage must be 100")
        if not 0 <= self.failure_threshold < 1:
            raise BadInput(f"failure threshold {self.failure_threshold}: give a fraction in [0, 1)")
        if not 0 < self.advance_fraction <= 1:
            raise BadInput(f"advance fraction {self.advance_fraction}: give a fraction in (0, 1]")
        if self.min_reports < 1:
            raise BadInput("min reports must be at least 1")


def cohort_bucket(rollout_id: int, device_id: str) -> float:
    """Stable position of a device in a rollout, in percent [0, 100)."""
    h = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return (int.from_bytes(h[:8], "big") % 1_000_000) / 10_000


class RolloutStore:
    """The rollout state in SQLite; safe to call from several threads (one connection, one lock)."""

    def __init__(self, db: str | Path) -> None:
        self.db = str(db)
        self._lock = threading.Lock()
        self._evaluated: dict[int, float] = {}
        self._cohorts: dict[tuple[int, int, int], set[str]] = {}
        self._conn = sqlite3.connect(self.db, check_same_thread=False, timeout=10)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is durable against a crash of the service (not of the host)
            # without an fsync per device check-in.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- rollouts --------------------------------------------------------------------------------
    def create(self, cfg: RolloutConfig) -> dict[str, Any]:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE rollouts SET status='superseded' WHERE model=? AND channel=? AND status IN ('active','halted')",
                (cfg.model, cfg.channel))
            cur = self._conn.execute(
                "INSERT INTO rollouts (model, channel, target, from_target, stages, stage, status, failure_threshold,"
                " advance_fraction, min_reports, created) VALUES (?,?,?,?,?,0,'active',?,?,?,?)",
                (cfg.model, cfg.channel, cfg.target, cfg.from_target, json.dumps(list(cfg.stages)),
                 cfg.failure_threshold, cfg.advance_fraction, cfg.min_reports, time.time()))
            rid = int(cur.lastrowid or 0)
            self._event(rid, f"started: {cfg.target} at {cfg.stages[0]:g}%")
            self._conn.commit()
        return self.rollout(rid)

    def _event(self, rid: int, text: str) -> None:
        self._conn.execute("INSERT INTO events (rollout_id, at, text) VALUES (?,?,?)", (rid, time.time(), text))

    def rollout(self, rid: int) -> dict[str, Any]:
        row = self._conn.execute("SELECT * FROM rollouts WHERE id=?", (rid,)).fetchone()
        if row is None:
            raise BadInput(f"no rollout {rid}")
        r = dict(row)
        r["stages"] = json.loads(r["stages"])
        r["percent"] = r["stages"][r["stage"]]
        return r

    def current(self, model: str, channel: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id FROM rollouts WHERE model=? AND channel=? AND status!='superseded' ORDER BY id DESC LIMIT 1",
            (model, channel)).fetchone()
        return self.rollout(row["id"]) if row else None

    def set_status(self, rid: int, status: str, reason: str = "") -> dict[str, Any]:
        with self._lock:
            self._conn.execute("UPDATE rollouts SET status=?, reason=? WHERE id=?", (status, reason, rid))
            self._event(rid, f"{status}{': ' + reason if reason else ''}")
            self._conn.commit()
            return self.rollout(rid)

    def advance(self, rid: int) -> dict[str, Any]:
        with self._lock:
            r = self.rollout(rid)
            self._advance(r, "by hand")
            self._conn.commit()
            return self.rollout(rid)

    def _advance(self, r: dict[str, Any], why: str) -> None:
        if r["stage"] + 1 >= len(r["stages"]):
            self._conn.execute("UPDATE rollouts SET status='complete' WHERE id=?", (r["id"],))
            self._event(r["id"], f"complete ({why})")
        else:
            self._conn.execute("UPDATE rollouts SET stage=stage+1 WHERE id=?", (r["id"],))
            self._event(r["id"], f"advanced to {r['stages'][r['stage'] + 1]:g}% ({why})")

    # -- devices ---------------------------------------------------------------------------------
    def assign(self, device_id: str, model: str, channel: str, active_target: str | None,
               agent_version: str | None = None) -> dict[str, Any]:
        with self._lock:
            self._conn.execute(
                "INSERT INTO devices (device_id, model, channel, active_target, agent_version, last_seen) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(device_id) DO UPDATE SET model=excluded.model, "
                "channel=excluded.channel, active_target=excluded.active_target, "
                "agent_version=COALESCE(excluded.agent_version, agent_version), last_seen=excluded.last_seen",
                (device_id, model, channel, active_target, agent_version, time.time()))
            r = self.current(model, channel) if model else None
            if r is not None and r["status"] == "active" and time.monotonic() - self._evaluated.get(r["id"], 0) > 1:
                # A stage whose cohort grew (new devices) may advance now; at most once a second,
                # reports trigger their own evaluation.
                self._evaluated[r["id"]] = time.monotonic()
                self._evaluate(r)
                r = self.rollout(r["id"])
            self._conn.commit()
        if r is None:
            # No rollout: a device with no model installs the channel's release; a device that runs
            # one waits for a rollout (a release published a moment before its rollout starts must
            # not reach devices outside the canary).
            return {"target": None, "follow_channel": not active_target, "rollout": None}
        bucket = cohort_bucket(r["id"], device_id)
        base = {"rollout": r["id"], "stage": r["stage"], "percent": r["percent"], "status": r["status"],
                "bucket": bucket}
        with self._lock:
            in_cohort = device_id in self._cohort(r)
        if r["status"] == "complete" or (r["status"] == "active" and in_cohort):
            return {**base, "target": r["target"], "follow_channel": False}
        # Not (yet) in the cohort, or the rollout was halted: stay on / go back to the baseline.
        return {**base, "target": r["from_target"], "follow_channel": False}

    def report(self, rep: dict[str, Any]) -> dict[str, Any]:
        device = str(rep.get("device_id") or "")
        if not device:
            raise BadInput("a report needs device_id")
        rollout_id = (rep.get("rollout") or {}).get("rollout") if isinstance(rep.get("rollout"), dict) else None
        with self._lock:
            self._conn.execute(
                "INSERT INTO reports (device_id, rollout_id, target, outcome, transient, detail, active_target, at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (device, rollout_id, rep.get("target"), rep.get("outcome", "unknown"), int(bool(rep.get("transient"))),
                 str(rep.get("detail", ""))[:500], rep.get("active_target"), time.time()))
            self._conn.execute("UPDATE devices SET active_target=?, last_outcome=?, last_seen=? WHERE device_id=?",
                               (rep.get("active_target"), rep.get("outcome"), time.time(), device))
            result: dict[str, Any] = {"ok": True}
            if rollout_id is not None:
                r = self.rollout(int(rollout_id))
                if r["status"] == "active":
                    self._evaluate(r)
                result["rollout"] = self.rollout(int(rollout_id))
            self._conn.commit()
            return result

    def _cohort(self, r: dict[str, Any]) -> set[str]:
        """Known devices whose bucket is under the stage's percentage; never empty while the fleet is
        not (the lowest-bucket device is the canary of a small fleet). Cached per fleet size."""
        devices = [row["device_id"] for row in self._conn.execute(
            "SELECT device_id FROM devices WHERE model=? AND channel=?", (r["model"], r["channel"]))]
        key = (r["id"], r["stage"], len(devices))
        if key not in self._cohorts:
            buckets = {d: cohort_bucket(r["id"], d) for d in devices}
            cohort = {d for d, b in buckets.items() if b < r["percent"]}
            if not cohort and buckets:
                cohort = {min(buckets, key=buckets.__getitem__)}
            self._cohorts = {k: v for k, v in self._cohorts.items() if k[0] != r["id"]}
            self._cohorts[key] = cohort
        return self._cohorts[key]

    def stage_stats(self, r: dict[str, Any]) -> dict[str, Any]:
        cohort = self._cohort(r)
        devices = self._conn.execute("SELECT COUNT(*) FROM devices WHERE model=? AND channel=?",
                                     (r["model"], r["channel"])).fetchone()[0]
        latest: dict[str, str] = {}
        for row in self._conn.execute(
                "SELECT device_id, outcome, transient FROM reports WHERE rollout_id=? AND target=? ORDER BY id",
                (r["id"], r["target"])):
            if row["outcome"] in SUCCESS or (row["outcome"] in FAILURE and not row["transient"]):
                latest[row["device_id"]] = row["outcome"]
        ok = sum(1 for d, o in latest.items() if d in cohort and o in SUCCESS)
        bad = sum(1 for d, o in latest.items() if d in cohort and o in FAILURE)
        return {"cohort": len(cohort), "known_devices": devices, "succeeded": ok, "failed": bad,
                "reported": ok + bad}

    def _evaluate(self, r: dict[str, Any]) -> None:
        s = self.stage_stats(r)
        if s["reported"] and s["failed"] / s["reported"] > r["failure_threshold"] \
                and s["reported"] >= min(r["min_reports"], max(1, s["cohort"])):
            self._conn.execute("UPDATE rollouts SET status='halted', reason=? WHERE id=?",
                               (f"{s['failed']} of {s['reported']} devices failed at {r['percent']:g}%", r["id"]))
            self._event(r["id"], f"halted at {r['percent']:g}%: {s['failed']} of {s['reported']} failed")
            return
        if s["cohort"] and s["reported"] >= math.ceil(r["advance_fraction"] * s["cohort"]):
            self._advance(r, f"{s['succeeded']}/{s['cohort']} succeeded")

    def status(self) -> dict[str, Any]:
        with self._lock:
            rollouts = []
            for row in self._conn.execute("SELECT id FROM rollouts ORDER BY id").fetchall():
                r = self.rollout(row["id"])
                r["stats"] = self.stage_stats(r)
                r["events"] = [dict(e) for e in self._conn.execute(
                    "SELECT at, text FROM events WHERE rollout_id=? ORDER BY id", (r["id"],))]
                rollouts.append(r)
            devices = [dict(d) for d in self._conn.execute("SELECT * FROM devices ORDER BY device_id")]
        by_target: dict[str, int] = {}
        for d in devices:
            by_target[d["active_target"] or "(none)"] = by_target.get(d["active_target"] or "(none)", 0) + 1
        return {"rollouts": rollouts, "devices": devices, "fleet": {"devices": len(devices), "by_target": by_target}}


@dataclasses.dataclass(frozen=True)
class AccessTokens:
    """Bearer tokens of the rollout service; a role whose token is None is open."""

    admin: str | None = None
    device: str | None = None

    @property
    def open(self) -> bool:
        return self.admin is None or self.device is None


def read_token(path: str | Path) -> str:
    """A token from a file (one line; made by ``edgeship ship rollout-token``)."""
    f = Path(path)
    try:
        token = f.read_text().strip()
    except OSError as exc:
        raise BadInput(f"token file {str(f)!r}: {exc.strerror or exc}; make one with "
                       "edgeship ship rollout-token FILE") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise BadInput(f"token file {str(f)!r} holds no usable token (one line of at least 16 characters)")
    return token


def write_token(path: str | Path) -> Path:
    """A new random token in a new file readable by its owner only."""
    import secrets

    f = Path(path)
    if f.exists():
        raise BadInput(f"{str(f)!r} exists; tokens are not overwritten (delete it first to replace it)")
    try:
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BadInput(f"cannot create {str(f)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return f


def check_exposure(host: str, tokens: AccessTokens, insecure: bool) -> None:
    """Refuse to serve an open service on an address other machines can reach."""
    if host in ("127.0.0.1", "localhost", "::1") or not tokens.open or insecure:
        return
    raise BadInput(f"the rollout service on {host} would be open to anyone who reaches it; give "
                   "--admin-token-file and --device-token-file (edgeship ship rollout-token FILE makes them), "
                   "or --insecure-no-auth on a network you trust")


def create_app(db: str | Path, tokens: AccessTokens | None = None) -> Any:
    """The FastAPI application over a RolloutStore at ``db``."""
    from edgeship.core.registry import require

    require("fastapi", "ship", "FastAPI")
    from fastapi import Body, Depends, FastAPI, Header, HTTPException

    tokens = tokens or AccessTokens()
    store = RolloutStore(db)
    app = FastAPI(title="edgeship rollout service", version="1")
    app.state.store = store

    def _bad(exc: BadInput) -> HTTPException:
        return HTTPException(status_code=400, detail=str(exc))

    def _requires(*allowed: str | None) -> Any:
        """A dependency accepting the bearer tokens of the given roles (an open role accepts anyone)."""
        def check(authorization: str = Header(default="")) -> None:
            if any(t is None for t in allowed):
                return
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and any(hmac.compare_digest(value.encode(), t.encode())
                                                  for t in allowed if t):
                return
            raise HTTPException(status_code=401, detail="missing or wrong access token for this request",
                                headers={"WWW-Authenticate": "Bearer"})
        return Depends(check)

    operators = _requires(tokens.admin)
    devices = _requires(tokens.device, tokens.admin)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/rollouts", dependencies=[operators])
    def start(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        try:
            return store.create(RolloutConfig.from_dict(body))
        except BadInput as exc:
            raise _bad(exc) from None

    @app.post("/v1/rollouts/{rid}/{action}", dependencies=[operators])
    def act(rid: int, action: str) -> dict[str, Any]:
        try:
            if action == "advance":
                return store.advance(rid)
            if action in ("halt", "resume"):
                return store.set_status(rid, "halted" if action == "halt" else "active", "by hand")
        except BadInput as exc:
            raise _bad(exc) from None
        raise HTTPException(status_code=404, detail=f"unknown action {action!r}; use advance, halt or resume")

    @app.get("/v1/assignment", dependencies=[devices])
    def assignment(device_id: str, model: str = "", channel: str = "stable", active_target: str | None = None,
                   agent_version: str | None = None) -> dict[str, Any]:
        return store.assign(device_id, model, channel, active_target, agent_version)

    @app.post("/v1/reports", dependencies=[devices])
    def report(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        try:
            return store.report(body)
        except BadInput as exc:
            raise _bad(exc) from None

    @app.get("/v1/status", dependencies=[operators])
    def status() -> dict[str, Any]:
        return store.status()

    return app


class RolloutServer:
    """uvicorn serving the app in a background thread, bound to loopback on an ephemeral port."""

    def __init__(self, db: str | Path, host: str = "127.0.0.1", port: int = 0,
                 tokens: AccessTokens | None = None, insecure: bool = False) -> None:
        import socket

        import uvicorn

        check_exposure(host, tokens or AccessTokens(), insecure)
        self.app = create_app(db, tokens)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                    timeout_keep_alive=30))
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
            if time.monotonic() > deadline:
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


def _serve_in_process(db: str, host: str, ports: Any) -> None:
    server = RolloutServer(db, host, 0)
    ports.put(server.port)
    server.run()


class RolloutProcess:
    """The rollout service in its own process (a fleet simulation keeps it off the devices' GIL)."""

    def __init__(self, db: str | Path, host: str = "127.0.0.1") -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ports: Any = ctx.Queue()
        self.proc = ctx.Process(target=_serve_in_process, args=(str(db), host, ports), daemon=True)
        self.proc.start()
        self.port = int(ports.get(timeout=60))
        self.url = f"http://{host}:{self.port}"
        client = RolloutClient(self.url, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                client._call("GET", "/v1/health")
                break
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("rollout service process did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)


class RolloutClient:
    """What agents and ``ship status`` use to talk to the rollout service (timeouts on every call)."""

    def __init__(self, url: str, timeout: float = 10.0, token: str | None = None) -> None:
        import urllib3

        self.url = url.rstrip("/")
        self.token = token
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._http = _pool()

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
        data = json.loads(resp.data or b"null")
        if resp.status == 401:
            raise BadInput(f"the rollout service at {self.url} refused the request: missing or wrong access token "
                           "(give --token-file with the operator or device token)")
        if resp.status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else data
            raise BadInput(f"rollout service: {detail}")
        return data

    def assign(self, device_id: str, model: str, channel: str, active_target: str | None) -> dict[str, Any]:
        from edgeship.ship.agent import agent_version

        return self._call("GET", "/v1/assignment", fields={
            "device_id": device_id, "model": model, "channel": channel, "active_target": active_target,
            "agent_version": agent_version()})  # type: ignore[no-any-return]

    def report(self, outcome: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/reports", body=outcome)  # type: ignore[no-any-return]

    def start(self, cfg: RolloutConfig) -> dict[str, Any]:
        return self._call("POST", "/v1/rollouts", body=cfg.to_dict())  # type: ignore[no-any-return]

    def action(self, rid: int, action: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/rollouts/{rid}/{action}")  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")  # type: ignore[no-any-return]


_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _pool() -> Any:
    """One connection pool per process (the fleet simulation runs many agents in threads)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import urllib3

            _POOL = urllib3.PoolManager(maxsize=64, block=False)
        return _POOL
