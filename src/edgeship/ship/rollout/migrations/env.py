"""Alembic's entry point for the rollout store's migrations: runs them on the connection
``edgeship.ship.rollout.schema.upgrade`` hands over (no alembic.ini, no URL of its own)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
