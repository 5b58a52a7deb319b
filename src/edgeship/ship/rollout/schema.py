"""The rollout service's tables (SQLAlchemy Core), and the database URL a ``--db`` argument names.

The tables are created and changed only by the Alembic migrations beside this file
(``migrations/versions``); :func:`upgrade` brings any database to the newest revision, and a
SQLite file written by the hand-written schema of earlier versions is adopted as revision 0001.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput

MIGRATIONS = Path(__file__).with_name("migrations")


def _tables() -> tuple[Any, dict[str, Any]]:
    import sqlalchemy as sa

    meta = sa.MetaData()
    text, real, integer = sa.Text, sa.Float, sa.Integer
    tables = {
        "rollouts": sa.Table(
            "rollouts", meta,
            sa.Column("id", integer, primary_key=True, autoincrement=True),
            sa.Column("model", text, nullable=False), sa.Column("channel", text, nullable=False),
            sa.Column("target", text, nullable=False), sa.Column("from_target", text),
            sa.Column("stages", text, nullable=False), sa.Column("stage", integer, nullable=False, default=0),
            sa.Column("status", text, nullable=False), sa.Column("failure_threshold", real, nullable=False),
            sa.Column("advance_fraction", real, nullable=False), sa.Column("min_reports", integer, nullable=False),
            sa.Column("created", real, nullable=False), sa.Column("reason", text),
            # 0002: the whole RolloutConfig (telemetry gates included), what halted it, the gates' last verdicts
            sa.Column("config", text), sa.Column("halt", text), sa.Column("gate_results", text)),
        "devices": sa.Table(
            "devices", meta,
            sa.Column("device_id", text, primary_key=True), sa.Column("model", text), sa.Column("channel", text),
            sa.Column("active_target", text), sa.Column("agent_version", text), sa.Column("last_seen", real),
            sa.Column("last_outcome", text),
            sa.Column("last_detail", text), sa.Column("token", text)),  # 0002
        "reports": sa.Table(
            "reports", meta,
            sa.Column("id", integer, primary_key=True, autoincrement=True),
            sa.Column("device_id", text, nullable=False), sa.Column("rollout_id", integer),
            sa.Column("target", text), sa.Column("outcome", text, nullable=False),
            sa.Column("transient", integer, nullable=False, default=0), sa.Column("detail", text),
            sa.Column("active_target", text), sa.Column("at", real, nullable=False),
            sa.Index("reports_by_rollout", "rollout_id", "device_id")),
        "events": sa.Table(
            "events", meta,
            sa.Column("id", integer, primary_key=True, autoincrement=True), sa.Column("rollout_id", integer),
            sa.Column("at", real, nullable=False), sa.Column("text", text, nullable=False)),
        # 0002: a release's reference profile (the statistics of its golden data)
        "profiles": sa.Table(
            "profiles", meta,
            sa.Column("target", text, primary_key=True), sa.Column("profile", text, nullable=False),
            sa.Column("at", real, nullable=False)),
        # 0002: a line per telemetry report (one interval of one device on one release): its summary, not
        # its sketches, which are merged into telemetry_totals
        "telemetry": sa.Table(
            "telemetry", meta,
            sa.Column("id", integer, primary_key=True, autoincrement=True),
            sa.Column("device_id", text, nullable=False), sa.Column("report_id", text, nullable=False),
            sa.Column("target", text, nullable=False), sa.Column("start_at", real, nullable=False),
            sa.Column("end_at", real, nullable=False), sa.Column("received", real, nullable=False),
            sa.Column("inferences", integer, nullable=False), sa.Column("errors", integer, nullable=False),
            sa.Column("p50", real), sa.Column("p95", real), sa.Column("p99", real),
            sa.Column("dropped", integer, nullable=False, default=0), sa.Column("error_kinds", text),
            sa.UniqueConstraint("device_id", "report_id", name="telemetry_once"),
            sa.Index("telemetry_by_target", "target", "end_at")),
        # 0002: per device and release, the merge of all its reports (what gates and drift read)
        "telemetry_totals": sa.Table(
            "telemetry_totals", meta,
            sa.Column("target", text, primary_key=True), sa.Column("device_id", text, primary_key=True),
            sa.Column("first_at", real, nullable=False), sa.Column("last_at", real, nullable=False),
            sa.Column("inferences", integer, nullable=False), sa.Column("errors", integer, nullable=False),
            sa.Column("body", text, nullable=False)),
    }
    sa.Index("devices_by_model", tables["devices"].c.model, tables["devices"].c.channel)
    return meta, tables


METADATA, TABLES = _tables()


def database_url(db: str | Path) -> str:
    """``--db`` as SQLAlchemy reads it: a path is a SQLite file; ``postgresql://user@host:port/db``
    uses psycopg (version 3); ``sqlite:///…`` and other SQLAlchemy URLs pass through."""
    text = str(db)
    if "://" not in text:
        if not text:
            raise BadInput("--db: give a SQLite file path or a postgresql:// URL")
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, _, rest = text.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        raise BadInput(f"--db {text!r}: give a SQLite file path or a postgresql://user@host:port/db URL")
    return text


def engine_for(db: str | Path) -> Any:
    """An engine for ``db`` (see :func:`database_url`); SQLite runs in WAL mode."""
    import sqlalchemy as sa

    url = database_url(db)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the service (not of the host) without an
            # fsync per device check-in.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    from edgeship.core.registry import require

    require("psycopg", "ship", "psycopg")
    return sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def upgrade(engine: Any) -> None:
    """Run the migrations up to the newest revision (a database made before migrations existed is
    stamped as the first revision, whose tables it already has)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        names = set(sa.inspect(conn).get_table_names())
        if "rollouts" in names and "alembic_version" not in names:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, "head")


def head_revision() -> str:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())
