"""The rollout store's schema comes from Alembic migrations, on SQLite and on PostgreSQL: a new
database is at the head revision, the migrations go down and up again, a SQLite file written by the
hand-written schema of earlier versions is adopted with its rollouts, and ``--db`` names either."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.config import RolloutConfig
from edgeship.ship.rollout.schema import MIGRATIONS, database_url, head_revision
from edgeship.ship.rollout.store import RolloutStore

# The schema RolloutStore wrote with hand-written SQL before the store moved to SQLAlchemy.
OLD_SCHEMA = """
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,
  from_target TEXT, stages TEXT NOT NULL, stage INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
  failure_threshold REAL NOT NULL, advance_fraction REAL NOT NULL, min_reports INTEGER NOT NULL,
  created REAL NOT NULL, reason TEXT);
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY, model TEXT, channel TEXT, active_target TEXT, agent_version TEXT,
  last_seen REAL, last_outcome TEXT);
CREATE TABLE reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, rollout_id INTEGER, target TEXT,
  outcome TEXT NOT NULL, transient INTEGER NOT NULL DEFAULT 0, detail TEXT, active_target TEXT,
  at REAL NOT NULL);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id INTEGER, at REAL NOT NULL, text TEXT NOT NULL);
CREATE INDEX reports_by_rollout ON reports(rollout_id, device_id);
INSERT INTO rollouts VALUES (1, 'm', 'stable', 'new', 'old', '[50, 100]', 0, 'active', 0.2, 0.9, 2, 1.0, NULL);
INSERT INTO devices VALUES ('dev-1', 'm', 'stable', 'old', '0.1.0', 1.0, NULL);
"""


def _revision(store: RolloutStore) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())


def test_a_new_database_is_at_the_head_and_migrates_down_and_up(db_url):
    from alembic import command
    from alembic.config import Config

    store = RolloutStore(db_url)
    try:
        assert _revision(store) == head_revision() == "0002"
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert "telemetry" not in tables and "rollouts" in tables
    finally:
        store.close()
    again = RolloutStore(db_url)  # opening the store upgrades it again
    try:
        assert _revision(again) == "0002"
        again.create(RolloutConfig(model="m", target="t2", from_target="t1"))
    finally:
        again.close()


def test_a_database_of_the_old_hand_written_schema_is_adopted(tmp_path):
    db = tmp_path / "rollouts.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
    store = RolloutStore(db)
    try:
        assert _revision(store) == "0002"
        r = store.rollout(1)
        assert (r["target"], r["status"], r["config"]) == ("new", "active", None)
        assert store.config_of(r).stages == (50.0, 100.0)  # read from its columns
        a = store.assign("dev-1", "m", "stable", "old")
        store.report(Outcome("updated", device_id="dev-1", rollout=a, target=a["target"], active_target="new"))
        assert store.rollout(1)["stage"] == 1
    finally:
        store.close()


def test_db_arguments():
    url = database_url("rollouts.db")
    assert url.startswith("sqlite:////") and url.endswith("/rollouts.db")
    assert database_url("postgresql://edge@db.local:5432/fleet") == "postgresql+psycopg://edge@db.local:5432/fleet"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(BadInput, match="postgresql://"):
        database_url("mysql://x/y")
