"""Small named registries filled by decorators.

A registry is a plain dict with two rules: a duplicate name is an error, and asking for an unknown
name lists the known ones. The modules that fill a registry (by decorators, on import) are imported
on its first read, so ``import edgeship`` stays light. They are named in one of two ways:

- ``modules``: modules of the registry's own package or below it (targets/base names the target
  packages under targets/);
- ``plugins``: an entry-point group (``[project.entry-points."edgeship.data"]`` in pyproject.toml).
  A lower layer never names a higher one: core's model formats and data sets, and the sources'
  ``zoo:`` kind, are filled by the packages above through their entry points, and so can any
  installed package that adds a data set, a format or a source kind.

Handlers of typed configs (quantizers, compression steps, variant builders) live in a
:class:`TypeRegistry`, keyed by the config's class instead of a name.

Optional back-ends are imported only when used, through :func:`require`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Generic, TypeVar

from edgeship.core.errors import BadInput, MissingDependency

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: Iterable[str] = (), plugins: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = tuple(modules)  # imported on the first read; importing them registers the items
        self._plugins = plugins
        self._loaded = not self._modules and plugins is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: a module that reads the registry while importing must not recurse
            for module in self._modules:
                importlib.import_module(module)
            if self._plugins:
                from importlib.metadata import entry_points

                for ep in sorted(entry_points(group=self._plugins), key=lambda e: e.name):
                    ep.load()

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        def deco(item: T) -> T:
            return self.add(name, item)

        return deco

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise BadInput(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)


class TypeRegistry(Generic[T]):
    """Handlers keyed by a config class, the torchao way: ``handler = REG.get(type(config))``.

    The same two rules as :class:`Registry`: a class registered twice is an error, and a config of an
    unregistered class lists the known ones. ``get`` walks the class's bases, so a handler registered
    for a base class serves its subclasses unless they have their own."""

    def __init__(self, kind: str, modules: Iterable[str] = (), plugins: str | None = None) -> None:
        self.kind = kind
        self._loader: Registry[None] = Registry(kind, modules, plugins)  # imports the modules that fill it
        self._items: dict[type, T] = {}

    def add(self, cls: type, item: T) -> T:
        if cls in self._items:
            raise ValueError(f"{self.kind} for {cls.__name__} is registered twice")
        self._items[cls] = item
        return item

    def register(self, cls: type) -> Callable[[T], T]:
        def deco(item: T) -> T:
            return self.add(cls, item)

        return deco

    def get(self, key: object) -> T:
        """The handler for ``key`` (a config, or its class)."""
        self._loader._load()
        cls = key if isinstance(key, type) else type(key)
        for base in cls.__mro__:
            if base in self._items:
                return self._items[base]
        known = ", ".join(sorted(c.__name__ for c in self._items)) or "none"
        raise BadInput(f"unknown {self.kind} for {cls.__name__}; known: {known}")

    def types(self) -> list[type]:
        self._loader._load()
        return sorted(self._items, key=lambda c: c.__name__)


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """Import an optional back-end or raise a one-line 'install edgeship[extra]' error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(what or module, extra, exc) from exc


def installed_version(package: str) -> str | None:
    """The installed version of a distribution (``scikit-learn``, ``faker``), None when it is absent."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def is_installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
