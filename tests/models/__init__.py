"""Tiny fixture models built in code (never downloaded)."""
