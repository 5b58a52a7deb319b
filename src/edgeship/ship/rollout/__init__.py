"""Staged rollouts: the store (SQLite), the HTTP service, its client, its config and access tokens."""
