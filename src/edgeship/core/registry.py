"""Small named registries filled by decorators.

A registry is a plain dict with two rules: a duplicate name is an error, and asking for an unknown
name lists the known ones. The modules that fill a registry (by decorators, on import) are named
with it and imported on its first read, so ``import edgeship`` stays light. Optional back-ends are
imported only when used, through :func:`require`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Generic, TypeVar

from edgeship.core.errors import BadInput, MissingDependency

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = tuple(modules)  # imported on the first read; importing them registers the items
        self._loaded = not self._modules

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: a module that reads the registry while importing must not recurse
            for module in self._modules:
                importlib.import_module(module)

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


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """Import an optional back-end or raise a one-line 'install edgeship[extra]' error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(what or module, extra, exc) from exc


def is_installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
