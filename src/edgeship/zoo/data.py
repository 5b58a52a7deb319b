"""Bundled data sets (registered with edgeship.core.data.register_data)."""
