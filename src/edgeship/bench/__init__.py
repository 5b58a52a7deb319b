"""Benchmarks: timing in a fresh process per model, statistics, system fingerprint."""
