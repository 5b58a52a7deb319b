"""Deployment targets: one package per target, each a converter and a Runner, registered by name."""
