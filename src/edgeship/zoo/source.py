"""The ``zoo:NAME`` source kind: a bundled model by name (registered through the ``edgeship.sources``
entry point, since sources/ sits below the zoo)."""

from __future__ import annotations

from edgeship.core.errors import BadInput
from edgeship.sources.loaders import SourceOptions, source_kind
from edgeship.sources.torch_source import TorchSource
from edgeship.zoo.base import load_zoo, zoo_names


@source_kind("zoo", "a bundled model: zoo:NAME", 0, lambda s: s.startswith("zoo:"))
def load_zoo_source(spec: str, opts: SourceOptions) -> TorchSource:
    name = spec.removeprefix("zoo:")
    if name not in zoo_names():
        known = ", ".join(f"zoo:{n}" for n in zoo_names()) or "none installed"
        raise BadInput(f"unknown zoo model {name!r}; known: {known}")
    return load_zoo(name)
