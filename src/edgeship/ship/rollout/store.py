"""The rollout state in a SQL database (SQLAlchemy; SQLite by default, PostgreSQL by URL):
rollouts, the devices that checked in, their reports and telemetry, and the cohort logic that
decides which release each device runs.

A rollout moves one model on one channel from ``from_target`` to ``target`` through stages of
device percentages (default canary 1% → 10% → 50% → 100%). A device belongs to a stage's cohort
when the stable hash of (rollout id, device id) falls below the stage's percentage, so cohorts only
grow and a device never flips back and forth. A stage advances once enough of its cohort reported
(and, with telemetry gates, sent telemetry), and the rollout halts by itself when the failure rate
of the devices that reported exceeds the threshold, or a telemetry gate fails (latency against
the previous release on the same devices, error rate, drift against the golden data, confidence);
the halt names the gate and the devices. A halted rollout sends every device back to
``from_target`` (unless ``rollback_on_halt`` is off: then the cohort holds).

With a rollout service, releases reach devices that already run a model only through rollouts;
a device with nothing installed takes the channel's current release.

The store chooses among releases only: every file a device installs is still verified through
TUF, so a compromised rollout server can at worst hold an update back or pick an older signed one.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.schema import TABLES, engine_for, upgrade
from edgeship.ship.telemetry import Aggregate

GATE_EVALUATION_S = 1.0  # telemetry gates of a rollout are evaluated at most this often by ingest


def cohort_bucket(rollout_id: int, device_id: str) -> float:
    """Stable position of a device in a rollout, in percent [0, 100)."""
    h = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return (int.from_bytes(h[:8], "big") % 1_000_000) / 10_000


def _insert(conn: Any, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL both have them);
    ``conn`` a connection or an engine."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


class RolloutStore:
    """The rollout state; safe to call from several threads (one lock around every transaction)."""

    def __init__(self, db: str | Path) -> None:
        self.db = str(db)
        self._lock = threading.RLock()
        self._evaluated: dict[int, float] = {}
        self._cohorts: dict[tuple[int, int, int], set[str]] = {}
        self._totals: dict[str, dict[str, Aggregate]] = {}  # target → device → merged telemetry
        self._profiles: dict[str, dict[str, Any] | None] = {}
        self.engine = engine_for(db)
        upgrade(self.engine)
        self.t = TABLES
        self._ingest_sql = self._ingest_statements()

    def close(self) -> None:
        with self._lock:
            self.engine.dispose()

    # -- rollouts --------------------------------------------------------------------------------
    def create(self, cfg: RolloutConfig) -> dict[str, Any]:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        with self._lock, self.engine.begin() as conn:
            conn.execute(sa.update(ro).where(ro.c.model == cfg.model, ro.c.channel == cfg.channel,
                                             ro.c.status.in_(("active", "halted"))).values(status="superseded"))
            rid = conn.execute(sa.insert(ro).values(
                model=cfg.model, channel=cfg.channel, target=cfg.target, from_target=cfg.from_target,
                stages=json.dumps(list(cfg.stages)), stage=0, status="active",
                failure_threshold=cfg.failure_threshold, advance_fraction=cfg.advance_fraction,
                min_reports=cfg.min_reports, created=time.time(), config=cfg.to_json())).inserted_primary_key[0]
            self._event(conn, rid, f"started: {cfg.target} at {cfg.stages[0]:g}%")
            return self._rollout(conn, rid)

    def _event(self, conn: Any, rid: int, text: str) -> None:
        import sqlalchemy as sa

        conn.execute(sa.insert(self.t["events"]).values(rollout_id=rid, at=time.time(), text=text))

    def _rollout(self, conn: Any, rid: int) -> dict[str, Any]:
        import sqlalchemy as sa

        row = conn.execute(sa.select(self.t["rollouts"]).where(self.t["rollouts"].c.id == rid)).mappings().first()
        if row is None:
            raise BadInput(f"no rollout {rid}")
        r = dict(row)
        r["stages"] = json.loads(r["stages"])
        r["percent"] = r["stages"][r["stage"]]
        r["config"] = json.loads(r["config"]) if r.get("config") else None
        r["halt"] = json.loads(r["halt"]) if r.get("halt") else None
        r["gate_results"] = json.loads(r["gate_results"]) if r.get("gate_results") else []
        return r

    def rollout(self, rid: int) -> dict[str, Any]:
        with self._lock, self.engine.connect() as conn:
            return self._rollout(conn, rid)

    @staticmethod
    def config_of(r: Mapping[str, Any]) -> RolloutConfig:
        """The rollout's config (a rollout stored before configs were kept: from its columns)."""
        if r.get("config"):
            return RolloutConfig.from_dict(r["config"])
        return RolloutConfig(model=r["model"], channel=r["channel"], target=r["target"], from_target=r["from_target"],
                             stages=tuple(r["stages"]), failure_threshold=r["failure_threshold"],
                             advance_fraction=r["advance_fraction"], min_reports=r["min_reports"])

    def _current(self, conn: Any, model: str, channel: str) -> dict[str, Any] | None:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        rid = conn.execute(sa.select(ro.c.id).where(ro.c.model == model, ro.c.channel == channel,
                                                    ro.c.status != "superseded")
                           .order_by(ro.c.id.desc()).limit(1)).scalar()
        return self._rollout(conn, rid) if rid is not None else None

    def current(self, model: str, channel: str) -> dict[str, Any] | None:
        with self._lock, self.engine.connect() as conn:
            return self._current(conn, model, channel)

    def set_status(self, rid: int, status: str, reason: str = "") -> dict[str, Any]:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        with self._lock, self.engine.begin() as conn:
            self._rollout(conn, rid)
            values: dict[str, Any] = {"status": status, "reason": reason}
            if status == "active":
                values["halt"] = None
            conn.execute(sa.update(ro).where(ro.c.id == rid).values(**values))
            self._event(conn, rid, f"{status}{': ' + reason if reason else ''}")
            return self._rollout(conn, rid)

    def advance(self, rid: int) -> dict[str, Any]:
        with self._lock, self.engine.begin() as conn:
            self._advance(conn, self._rollout(conn, rid), "by hand")
            return self._rollout(conn, rid)

    def _advance(self, conn: Any, r: dict[str, Any], why: str) -> None:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        if r["stage"] + 1 >= len(r["stages"]):
            conn.execute(sa.update(ro).where(ro.c.id == r["id"]).values(status="complete"))
            self._event(conn, r["id"], f"complete ({why})")
        else:
            conn.execute(sa.update(ro).where(ro.c.id == r["id"]).values(stage=ro.c.stage + 1))
            self._event(conn, r["id"], f"advanced to {r['stages'][r['stage'] + 1]:g}% ({why})")

    def _halt(self, conn: Any, r: dict[str, Any], reason: str, halt: dict[str, Any]) -> None:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        conn.execute(sa.update(ro).where(ro.c.id == r["id"]).values(status="halted", reason=reason,
                                                                     halt=json.dumps(halt)))
        self._event(conn, r["id"], f"halted at {r['percent']:g}%: {reason}")

    # -- devices ---------------------------------------------------------------------------------
    def assign(self, device_id: str, model: str, channel: str, active_target: str | None,
               agent_version: str | None = None, token: str | None = None) -> dict[str, Any]:
        import sqlalchemy as sa

        dev = self.t["devices"]
        with self._lock, self.engine.begin() as conn:
            ins = _insert(conn, dev).values(device_id=device_id, model=model, channel=channel,
                                            active_target=active_target, agent_version=agent_version,
                                            last_seen=time.time(), token=token)
            conn.execute(ins.on_conflict_do_update(index_elements=[dev.c.device_id], set_={
                "model": ins.excluded.model, "channel": ins.excluded.channel,
                "active_target": ins.excluded.active_target,
                "agent_version": sa.func.coalesce(ins.excluded.agent_version, dev.c.agent_version),
                "last_seen": ins.excluded.last_seen, "token": sa.func.coalesce(ins.excluded.token, dev.c.token)}))
            r = self._current(conn, model, channel) if model else None
            if r is not None and r["status"] == "active" and time.monotonic() - self._evaluated.get(r["id"], 0) > 1:
                # A stage whose cohort grew (new devices) may advance now; at most once a second,
                # reports trigger their own evaluation.
                self._evaluated[r["id"]] = time.monotonic()
                self._evaluate(conn, r)
                r = self._rollout(conn, r["id"])
            if r is None:
                # No rollout: a device with no model installs the channel's release; a device that
                # runs one waits for a rollout (a release published a moment before its rollout
                # starts must not reach devices outside the canary).
                return {"target": None, "follow_channel": not active_target, "rollout": None}
            in_cohort = device_id in self._cohort(conn, r)
        bucket = cohort_bucket(r["id"], device_id)
        base = {"rollout": r["id"], "stage": r["stage"], "percent": r["percent"], "status": r["status"],
                "bucket": bucket}
        holds = r["status"] == "halted" and not self.config_of(r).rollback_on_halt
        if r["status"] == "complete" or (r["status"] == "active" and in_cohort) or (holds and in_cohort):
            return {**base, "target": r["target"], "follow_channel": False}
        # Not (yet) in the cohort, or the rollout was halted: stay on / go back to the baseline.
        return {**base, "target": r["from_target"], "follow_channel": False}

    def device_tokens(self) -> dict[str, str | None]:
        """Each known device and the digest of the device token it checked in with."""
        import sqlalchemy as sa

        dev = self.t["devices"]
        with self._lock, self.engine.connect() as conn:
            return dict(conn.execute(sa.select(dev.c.device_id, dev.c.token)).all())  # type: ignore[arg-type]

    def report(self, outcome: Outcome) -> dict[str, Any]:
        """Record a device's outcome; a report within a rollout may advance or halt it."""
        import sqlalchemy as sa

        device = outcome.device_id or ""
        if not device:
            raise BadInput("a report needs device_id")
        rollout_id = outcome.rollout_id
        dev = self.t["devices"]
        with self._lock, self.engine.begin() as conn:
            conn.execute(sa.insert(self.t["reports"]).values(
                device_id=device, rollout_id=rollout_id, target=outcome.target, outcome=outcome.kind,
                transient=int(bool(outcome.transient)), detail=(outcome.detail or "")[:500],
                active_target=outcome.active_target, at=time.time()))
            conn.execute(sa.update(dev).where(dev.c.device_id == device).values(
                active_target=outcome.active_target, last_outcome=outcome.kind, last_seen=time.time(),
                last_detail=(outcome.detail or None) and outcome.detail[:500]))
            result: dict[str, Any] = {"ok": True}
            if rollout_id is not None:
                r = self._rollout(conn, rollout_id)
                if r["status"] == "active":
                    self._evaluate(conn, r)
                result["rollout"] = self._rollout(conn, rollout_id)
            return result

    def _fleet(self, conn: Any, r: Mapping[str, Any]) -> list[str]:
        import sqlalchemy as sa

        dev = self.t["devices"]
        return list(conn.execute(sa.select(dev.c.device_id).where(dev.c.model == r["model"],
                                                                   dev.c.channel == r["channel"])).scalars())

    def _cohort(self, conn: Any, r: Mapping[str, Any]) -> set[str]:
        """Known devices whose bucket is under the stage's percentage; never empty while the fleet is
        not (the lowest-bucket device is the canary of a small fleet). Cached per fleet size."""
        import sqlalchemy as sa

        dev = self.t["devices"]
        size = int(conn.execute(sa.select(sa.func.count()).select_from(dev).where(
            dev.c.model == r["model"], dev.c.channel == r["channel"])).scalar())
        key = (r["id"], r["stage"], size)
        if key not in self._cohorts:
            buckets = {d: cohort_bucket(r["id"], d) for d in self._fleet(conn, r)}
            cohort = {d for d, b in buckets.items() if b < r["percent"]}
            if not cohort and buckets:
                cohort = {min(buckets, key=buckets.__getitem__)}
            self._cohorts = {k: v for k, v in self._cohorts.items() if k[0] != r["id"]}
            self._cohorts[key] = cohort
        return self._cohorts[key]

    def cohort(self, r: Mapping[str, Any]) -> set[str]:
        """The devices of rollout ``r``'s current stage."""
        with self._lock, self.engine.connect() as conn:
            return set(self._cohort(conn, r))

    def _stage_stats(self, conn: Any, r: Mapping[str, Any]) -> dict[str, Any]:
        import sqlalchemy as sa

        cohort = self._cohort(conn, r)
        rep, dev = self.t["reports"], self.t["devices"]
        devices = int(conn.execute(sa.select(sa.func.count()).select_from(dev).where(
            dev.c.model == r["model"], dev.c.channel == r["channel"])).scalar())
        # Each device's latest verdict on the release: a success or a failure of the release itself.
        latest: dict[str, Outcome] = {}
        rows = conn.execute(sa.select(rep.c.device_id, rep.c.outcome, rep.c.transient)
                            .where(rep.c.rollout_id == r["id"], rep.c.target == r["target"]).order_by(rep.c.id))
        for device_id, kind, transient in rows:
            reported = Outcome(kind, transient=bool(transient))
            if reported.succeeded or reported.failed:
                latest[device_id] = reported
        ok = sorted(d for d, o in latest.items() if d in cohort and o.succeeded)
        bad = sorted(d for d, o in latest.items() if d in cohort and o.failed)
        return {"cohort": len(cohort), "known_devices": devices, "succeeded": len(ok), "failed": len(bad),
                "reported": len(ok) + len(bad), "failed_devices": bad[:50], "succeeded_devices": ok}

    def stage_stats(self, r: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock, self.engine.connect() as conn:
            stats = self._stage_stats(conn, r)
        stats.pop("succeeded_devices")
        return stats

    def _evaluate(self, conn: Any, r: dict[str, Any]) -> None:
        from edgeship.ship.rollout.gates import Evidence, evaluate

        s = self._stage_stats(conn, r)
        cfg = self.config_of(r)
        need = min(r["min_reports"], max(1, s["cohort"]))
        if s["reported"] and s["failed"] / s["reported"] > r["failure_threshold"] and s["reported"] >= need:
            self._halt(conn, r, f"{s['failed']} of {s['reported']} devices failed",
                       {"gate": "install", "value": round(s["failed"] / s["reported"], 4),
                        "limit": r["failure_threshold"], "devices": s["failed_devices"][:20], "gates": ["install"],
                        "why": f"{s['failed']} of {s['reported']} devices failed to install at {r['percent']:g}%"})
            return
        ready = s["cohort"] and s["reported"] >= math.ceil(r["advance_fraction"] * s["cohort"])
        if cfg.gates.on:
            ok = s["succeeded_devices"]
            ev = Evidence(new=self._device_totals(conn, r["target"], ok),
                          old=self._device_totals(conn, r["from_target"], ok) if r["from_target"] else {},
                          reference=self._profile(conn, r["target"]), min_devices=need,
                          min_inferences=cfg.gates.min_inferences)
            verdicts = evaluate(cfg.gates, ev)
            self._store_verdicts(conn, r["id"], verdicts)
            failed = [v for v in verdicts if v.passed is False]
            if failed:
                named = list(dict.fromkeys(d for f in failed for d in f.devices))  # every failing gate's devices
                names = ", ".join(f.gate for f in failed)
                self._halt(conn, r, f"gate {names} failed: {'; '.join(f.why for f in failed)}; "
                                    f"devices {', '.join(named) or '-'}",
                           {**failed[0].to_dict(), "devices": named, "gates": [f.gate for f in failed]})
                return
            with_telemetry = sum(1 for a in ev.new.values() if a.count >= cfg.gates.min_inferences)
            ready = ready and with_telemetry >= math.ceil(r["advance_fraction"] * len(ok))
        if ready:
            self._advance(conn, r, f"{s['succeeded']}/{s['cohort']} succeeded")

    def _store_verdicts(self, conn: Any, rid: int, verdicts: Iterable[Any]) -> None:
        import sqlalchemy as sa

        ro = self.t["rollouts"]
        conn.execute(sa.update(ro).where(ro.c.id == rid).values(
            gate_results=json.dumps([v.to_dict() for v in verdicts])))

    # -- telemetry -------------------------------------------------------------------------------
    def put_profile(self, target: str, profile: Mapping[str, Any]) -> dict[str, Any]:
        """Store a release's reference profile (the statistics of its golden data)."""
        from edgeship.ship.drift import profile_sketches

        try:
            profile_sketches(profile)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadInput(f"reference profile of {target}: {exc}") from None
        prof = self.t["profiles"]
        with self._lock, self.engine.begin() as conn:
            ins = _insert(conn, prof).values(target=target, profile=json.dumps(profile), at=time.time())
            conn.execute(ins.on_conflict_do_update(index_elements=[prof.c.target],
                                                   set_={"profile": ins.excluded.profile, "at": ins.excluded.at}))
        self._profiles[target] = dict(profile)
        return {"target": target, "ok": True}

    def _profile(self, conn: Any, target: str) -> dict[str, Any] | None:
        import sqlalchemy as sa

        if target not in self._profiles:
            prof = self.t["profiles"]
            text = conn.execute(sa.select(prof.c.profile).where(prof.c.target == target)).scalar()
            self._profiles[target] = json.loads(text) if text else None
        return self._profiles[target]

    def _target_totals(self, conn: Any, target: str) -> dict[str, Aggregate]:
        """Every device's merged telemetry on ``target`` (read from the database once, then kept)."""
        import sqlalchemy as sa

        if target not in self._totals:
            tot = self.t["telemetry_totals"]
            rows = conn.execute(sa.select(tot.c.device_id, tot.c.body).where(tot.c.target == target))
            self._totals[target] = {d: Aggregate.from_dict(json.loads(body)) for d, body in rows}
        return self._totals[target]

    def _device_totals(self, conn: Any, target: str, devices: Iterable[str]) -> dict[str, Aggregate]:
        totals = self._target_totals(conn, target)
        return {d: totals[d] for d in devices if d in totals}

    def _ingest_statements(self) -> tuple[Any, Any, Any]:
        """The three statements of an ingest, built once (in ``__init__``): composing them with their
        values in every request cost more than the database (SQLAlchemy's coercions and cache keys,
        ~1 ms a report)."""
        import sqlalchemy as sa

        tel, tot, ro = self.t["telemetry"], self.t["telemetry_totals"], self.t["rollouts"]
        insert = _insert(self.engine, tel).on_conflict_do_nothing().returning(tel.c.id)
        upsert = _insert(self.engine, tot)
        upsert = upsert.on_conflict_do_update(index_elements=[tot.c.target, tot.c.device_id], set_={
            "last_at": upsert.excluded.last_at, "inferences": upsert.excluded.inferences,
            "errors": upsert.excluded.errors, "body": upsert.excluded.body})
        active = sa.select(ro.c.id, ro.c.target).where(ro.c.status == "active")  # a few at a time
        return insert, upsert, active

    def ingest(self, device_id: str, reports: list[Aggregate], report_ids: list[str],
               dropped: list[int]) -> dict[str, Any]:
        """Store telemetry reports of one device; a report it sent before (same id) is skipped.
        Rollouts whose release the reports are about evaluate their gates (at most once a second)."""
        insert, upsert, active = self._ingest_sql
        accepted = duplicates = 0
        now = time.time()
        with self._lock, self.engine.begin() as conn:
            touched: set[str] = set()
            for agg, rid, lost in zip(reports, report_ids, dropped, strict=True):
                row = conn.execute(insert, {
                    "device_id": device_id, "report_id": rid, "target": agg.target, "start_at": agg.start,
                    "end_at": agg.end, "received": now, "inferences": agg.count, "errors": agg.error_count,
                    "p50": agg.latency.quantile(0.5), "p95": agg.latency.quantile(0.95),
                    "p99": agg.latency.quantile(0.99), "dropped": lost,
                    "error_kinds": json.dumps(agg.errors) if agg.errors else None}).first()
                if row is None:
                    duplicates += 1
                    continue
                accepted += 1
                totals = self._target_totals(conn, agg.target)
                if device_id in totals:
                    totals[device_id].merge(agg)
                else:
                    totals[device_id] = Aggregate(target=agg.target, sha256=agg.sha256).merge(agg)
                touched.add(agg.target)
            for target in touched:
                t = self._totals[target][device_id]
                conn.execute(upsert, {"target": target, "device_id": device_id, "first_at": t.start,
                                      "last_at": t.end, "inferences": t.count, "errors": t.error_count,
                                      "body": json.dumps(t.to_dict())})
            if touched:
                for rid in [rid for rid, target in conn.execute(active) if target in touched]:
                    if time.monotonic() - self._evaluated.get(rid, 0) > GATE_EVALUATION_S:
                        self._evaluated[rid] = time.monotonic()
                        self._evaluate(conn, self._rollout(conn, rid))
        return {"accepted": accepted, "duplicates": duplicates}

    def drift(self, target: str, devices: Iterable[str] | None = None) -> dict[str, Any]:
        """Drift of ``target``'s telemetry against its reference profile: per statistic over the
        devices (all, or ``devices``: a cohort), and each device's worst statistic."""
        from edgeship.ship.drift import drift_scores, profile_sketches, worst
        from edgeship.ship.rollout.gates import merged_sketches

        with self._lock, self.engine.connect() as conn:
            reference = self._profile(conn, target)
            totals = self._target_totals(conn, target)
            aggs = totals if devices is None else {d: totals[d] for d in devices if d in totals}
            if not reference:
                return {"target": target, "reference": False, "scores": {}, "devices": {}}
            ref = profile_sketches(reference)
            scores = drift_scores(ref, merged_sketches(aggs.values()))
            per_device = {}
            for d, a in aggs.items():
                device_scores = drift_scores(ref, a.sketches())
                key, value = worst(device_scores)
                per_device[d] = {"worst": key, "psi": value, "scores": device_scores}
        return {"target": target, "reference": True, "scores": scores, "devices": per_device}

    def telemetry_series(self, target: str, bucket_s: float = 60.0, since: float | None = None) -> list[dict[str, Any]]:
        """Telemetry of ``target`` over time: per bucket of ``bucket_s`` seconds (by interval end),
        inferences, errors, and the inference-weighted mean of the reports' p50 and p95."""
        import sqlalchemy as sa

        tel = self.t["telemetry"]
        q = sa.select(tel.c.end_at, tel.c.inferences, tel.c.errors, tel.c.p50, tel.c.p95).where(tel.c.target == target)
        if since is not None:
            q = q.where(tel.c.end_at >= since)
        buckets: dict[int, dict[str, float]] = {}
        with self._lock, self.engine.connect() as conn:
            for end, n, errors, p50, p95 in conn.execute(q):
                b = buckets.setdefault(int(end // bucket_s), {"inferences": 0, "errors": 0, "w": 0, "p50": 0.0,
                                                              "p95": 0.0})
                b["inferences"] += n
                b["errors"] += errors
                if p50 is not None and n:
                    b["w"] += n
                    b["p50"] += p50 * n
                    b["p95"] += (p95 or p50) * n
        out = []
        for k in sorted(buckets):
            b = buckets[k]
            w = b.pop("w")
            out.append({"at": k * bucket_s, "inferences": int(b["inferences"]), "errors": int(b["errors"]),
                        "p50": b["p50"] / w if w else None, "p95": b["p95"] / w if w else None})
        return out

    def telemetry_targets(self) -> dict[str, dict[str, Any]]:
        """Per release: devices that sent telemetry, inferences, errors, dropped reports."""
        import sqlalchemy as sa

        tot, tel = self.t["telemetry_totals"], self.t["telemetry"]
        with self._lock, self.engine.connect() as conn:
            rows = conn.execute(sa.select(tot.c.target, sa.func.count(), sa.func.sum(tot.c.inferences),
                                          sa.func.sum(tot.c.errors)).group_by(tot.c.target))
            out = {t: {"devices": int(n), "inferences": int(i or 0), "errors": int(e or 0), "dropped": 0}
                   for t, n, i, e in rows}
            for t, d in conn.execute(sa.select(tel.c.target, sa.func.sum(tel.c.dropped)).group_by(tel.c.target)):
                if t in out:
                    out[t]["dropped"] = int(d or 0)
        return out

    # -- the fleet -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        import sqlalchemy as sa

        ro, ev, dev = self.t["rollouts"], self.t["events"], self.t["devices"]
        with self._lock, self.engine.connect() as conn:
            rollouts = []
            for rid in conn.execute(sa.select(ro.c.id).order_by(ro.c.id)).scalars().all():
                r = self._rollout(conn, rid)
                r["stats"] = self._stage_stats(conn, r)
                r["stats"].pop("succeeded_devices")
                r["events"] = [dict(e) for e in conn.execute(
                    sa.select(ev.c.at, ev.c.text).where(ev.c.rollout_id == rid).order_by(ev.c.id)).mappings()]
                rollouts.append(r)
            devices = [dict(d) for d in conn.execute(sa.select(dev).order_by(dev.c.device_id)).mappings()]
        for d in devices:
            d.pop("token", None)
        by_target: dict[str, int] = {}
        for d in devices:
            by_target[d["active_target"] or "(none)"] = by_target.get(d["active_target"] or "(none)", 0) + 1
        return {"rollouts": rollouts, "devices": devices, "fleet": {"devices": len(devices), "by_target": by_target},
                "telemetry": self.telemetry_targets()}
