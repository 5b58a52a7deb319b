"""Typed configs: one frozen dataclass per method, validated on construction, round-tripping to
JSON and YAML. The CLI builds the very same objects the Python API takes.

A config class declares ``kind`` (its registered name, for example ``"int8-static"``); the ``kind``
is written into its dict so a list of mixed configs (a recipe) loads back into the right classes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args, get_origin

from edgeship.core.errors import BadInput

C = TypeVar("C", bound="Config")

_CONFIG_KINDS: dict[str, type[Config]] = {}


class Config:
    """Mixin for frozen dataclasses. Subclasses set ``kind`` and may override ``validate``."""

    kind: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            if kind in _CONFIG_KINDS and _CONFIG_KINDS[kind].__qualname__ != cls.__qualname__:
                raise ValueError(f"config kind {kind!r} is registered twice")
            _CONFIG_KINDS[kind] = cls

    def __post_init__(self) -> None:
        # Literal-typed fields are checked here, once for every config: validate() need not repeat it.
        for name, choices in _literal_fields(type(self)):
            value = getattr(self, name)
            if value not in choices and not (value is None and None in choices):
                raise BadInput(_not_a_choice(f"{type(self).__name__}.{name}", value, choices))
        self.validate()

    def validate(self) -> None:
        """Raise BadInput naming the field and the allowed values."""

    @classmethod
    def upgrade_dict(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite an older layout of this config's dict (fields that moved) into the current one before
        ``from_dict`` reads it; the default changes nothing."""
        return data

    # -- round trip ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind} if self.kind else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise BadInput(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        data = dict(data)
        kind = data.pop("kind", None)
        target: type[Config] = cls
        if kind and kind != cls.kind:
            if kind not in _CONFIG_KINDS:
                raise BadInput(f"unknown config kind {kind!r}; known: {', '.join(sorted(_CONFIG_KINDS))}")
            target = _CONFIG_KINDS[kind]
            if not issubclass(target, cls):
                raise BadInput(f"config kind {kind!r} is not a {cls.__name__}")
        data = target.upgrade_dict(data)
        hints = typing.get_type_hints(target)
        names = {f.name for f in dataclasses.fields(target)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise BadInput(f"{target.__name__}: unknown field(s) {', '.join(sorted(unknown))}; "
                           f"allowed: {', '.join(sorted(names))}")
        kwargs = {k: _coerce(hints[k], v, f"{target.__name__}.{k}") for k, v in data.items()}
        try:
            return target(**kwargs)  # type: ignore[return-value]
        except TypeError as exc:
            raise BadInput(f"{target.__name__}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls: type[C], text: str) -> C:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"invalid YAML: {str(exc).splitlines()[0]}") from None
        return cls.from_dict(data or {})

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"config file {str(p)!r} not found")
        text = p.read_text()
        return cls.from_json(text) if p.suffix == ".json" else cls.from_yaml(text)

    def digest(self) -> str:
        """A stable short hash of the config, used to reuse finished steps."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` (coerced and validated like ``from_dict``)."""
        data = self.to_dict()
        data.update(changes)
        return type(self).from_dict(data)


def described(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its default and its description, kept together: ``help`` explains the
    field wherever it is shown (the CLI flag generated from it, docs); ``metavar`` names its value."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def config_kinds() -> dict[str, type[Config]]:
    return dict(_CONFIG_KINDS)


def literal_choices(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` annotation (``None`` among them for ``Literal[...] | None``);
    None when the annotation is no Literal."""
    origin = get_origin(hint)
    if origin is typing.Literal:
        return get_args(hint)
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        for arg in args:
            choices = literal_choices(arg)
            if choices is not None:
                return choices + ((None,) if type(None) in args else ())
    return None


@functools.cache
def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    found = ((f.name, literal_choices(hints[f.name])) for f in dataclasses.fields(cls))
    return tuple((name, choices) for name, choices in found if choices is not None)


def _not_a_choice(where: str, value: Any, choices: tuple[Any, ...]) -> str:
    shown = [str(c) for c in choices if c is not None]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f"{where}={value!r} is not one of the choices; choose {listed}"


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Turn JSON/YAML values back into the annotated types (tuples, nested configs, paths)."""
    if value is None:
        return None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        error: BadInput | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except BadInput as exc:
                error = exc
        if error is not None:
            raise error
        return value
    if origin is typing.Literal:
        if value not in args:
            raise BadInput(_not_a_choice(where, value, args))
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise BadInput(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"{where}: expected a mapping, got {value!r}")
        inner = args[1] if len(args) == 2 else Any
        return {k: _coerce(inner, v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(hint, type):
        if issubclass(hint, Config) and isinstance(value, dict):
            return hint.from_dict(value)
        if hint is Path:
            return Path(value)
        if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if hint in (int, str, bool) and not isinstance(value, hint):
            raise BadInput(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
