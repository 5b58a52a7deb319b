"""Core abstractions: Model handle, typed configs, registries, errors, atomic writes."""
