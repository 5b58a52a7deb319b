"""Bundled zoo models (registered in edgeship.zoo.base.ZOO)."""
