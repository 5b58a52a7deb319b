"""Command-line flags generated from a config class's fields, and the config built back from them.

A config field is the one place for a setting's default, its choices and its description
(``edgeship.core.config.described``); this module turns it into a flag, the way Polygraphy's
argument groups build configs:

- ``name`` → ``--name`` (underscores become dashes; ``names`` renames, e.g. ``time_budget_s`` →
  ``--time-budget``); the type comes from the annotation (``X | None`` is ``X``);
- ``Literal[...]`` → ``choices``; ``bool`` → ``--x`` / ``--no-x``;
- ``tuple[X, ...]`` → repeatable, each value a comma list (``--keep a,b --keep c``) unless the field
  is in ``whole`` (file names, which may hold commas);
- a nested config (``train: TrainSettings``) → its fields flattened into the same flags (``--lr``),
  in an argument group of their own;
- help: the field's description and its default, from the config class.

Every flag defaults to "not given", so a built config holds the class's defaults, or a base config's
values (``--config FILE``), wherever no flag was given. Several config classes can share one parser
(``edgeship quantize``'s methods): a flag then applies to the classes that have its field, and a flag
given for another class is a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeship.core.config import Config, literal_choices
from edgeship.core.errors import UsageError

DEST_PREFIX = "config__"


@dataclasses.dataclass
class ConfigFlag:
    """One generated flag: the field path it sets (``("train", "lr")``) and the classes that have it."""

    path: tuple[str, ...]
    flag: str
    dest: str
    hint: Any
    field: dataclasses.Field[Any]
    defaults: dict[type[Config], Any] = dataclasses.field(default_factory=dict)


class _Extend(argparse.Action):
    """Repeatable list flag: each value is added, split at commas unless ``split`` is False."""

    def __init__(self, *args: Any, item_type: type = str, split: bool = True, **kwargs: Any) -> None:
        self.item_type, self.split = item_type, split
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        parts = str(values).split(",") if self.split else [str(values)]
        try:
            items.extend(self.item_type(p.strip()) for p in parts if p.strip())
        except ValueError:
            parser.error(f"{option_string}: {values!r} is not a list of {self.item_type.__name__}")
        setattr(namespace, self.dest, items)


class ConfigFlags:
    """The flags of one or more config classes on ``parser``; :meth:`build` makes the config back.

    ``names`` maps a field path (``"train.epochs"``) to its flag name without the dashes
    (``"finetune-epochs"``); ``skip`` lists paths without a flag; ``required`` paths must be given;
    ``whole`` tuple paths take one item per flag; ``titles`` names the argument group of a nested
    config (``{"train": "training"}``); ``not_applicable`` is the error for a flag the built class
    lacks (``{flag}`` and ``{kind}`` are filled in)."""

    def __init__(self, parser: argparse.ArgumentParser, configs: type[Config] | Sequence[type[Config]], *,
                 names: Mapping[str, str] | None = None, skip: Collection[str] = (), required: Collection[str] = (),
                 whole: Collection[str] = (), titles: Mapping[str, str] | None = None,
                 not_applicable: str = "{flag} does not apply to {kind}") -> None:
        self.classes = [configs] if isinstance(configs, type) else list(configs)
        self.names = dict(names or {})
        self.skip, self.required, self.whole = set(skip), set(required), set(whole)
        self.titles = dict(titles or {})
        self.not_applicable = not_applicable
        self.flags: dict[tuple[str, ...], ConfigFlag] = {}
        self._groups: dict[str, Any] = {}
        for cls in self.classes:
            self._collect(cls, cls, (), _class_defaults(cls))
        for flag in self.flags.values():
            self._add(parser, flag)

    # -- the parser side ---------------------------------------------------------------------------
    def _collect(self, owner: type[Config], cls: type, prefix: tuple[str, ...], defaults: dict[str, Any]) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            path = (*prefix, f.name)
            key = ".".join(path)
            if key in self.skip:
                continue
            hint = _unwrap_optional(hints[f.name])
            if isinstance(hint, type) and issubclass(hint, Config):
                nested = defaults[f.name]
                self._collect(owner, hint, path, {g.name: getattr(nested, g.name) for g in dataclasses.fields(nested)})
                continue
            if path not in self.flags:
                name = self.names.get(key, f.name.replace("_", "-"))
                self.flags[path] = ConfigFlag(path, f"--{name}", DEST_PREFIX + "__".join(path), hint, f)
            self.flags[path].defaults[owner] = defaults[f.name]

    def _add(self, parser: argparse.ArgumentParser, flag: ConfigFlag) -> None:
        kwargs: dict[str, Any] = {"dest": flag.dest, "default": None, "help": self._help(flag)}
        if ".".join(flag.path) in self.required:
            kwargs["required"] = True
        kwargs.update(_argument_kind(flag, split=".".join(flag.path) not in self.whole))
        self._group(parser, flag).add_argument(flag.flag, **kwargs)

    def _group(self, parser: argparse.ArgumentParser, flag: ConfigFlag) -> Any:
        if len(self.classes) > 1:
            owners = [c for c in self.classes if c in flag.defaults]
            title = f"{owners[0].kind} options" if len(owners) == 1 else "options of several methods"
        elif len(flag.path) > 1:
            title = self.titles.get(flag.path[0], f"{flag.path[0]} options")
        else:
            return parser
        if title not in self._groups:
            self._groups[title] = parser.add_argument_group(title)
        return self._groups[title]

    def _help(self, flag: ConfigFlag) -> str:
        text = str(flag.field.metadata.get("help", ""))
        owners = [c for c in self.classes if c in flag.defaults]
        if len(self.classes) > 1 and len(owners) < len(self.classes) and len(owners) > 1:
            text += f" [{', '.join(c.kind for c in owners)}]"
        values = {c: flag.defaults[c] for c in owners}
        shown = {c: _show(v) for c, v in values.items() if _show(v) is not None}
        if shown and "default" not in text and ".".join(flag.path) not in self.required:
            if len(set(shown.values())) == 1:
                text += f" (default {next(iter(shown.values()))})"
            else:
                text += " (default " + ", ".join(f"{v} for {c.kind}" for c, v in shown.items()) + ")"
        return text.replace("%", "%%")

    def dest_of(self, path: str) -> str:
        """The argparse ``dest`` of a field path: for extra flags that set the same field (aliases)."""
        return self.flags[tuple(path.split("."))].dest

    # -- back to a config ---------------------------------------------------------------------------
    def given(self, args: argparse.Namespace) -> dict[tuple[str, ...], Any]:
        """The field values the command line set, by path."""
        values = {path: getattr(args, flag.dest, None) for path, flag in self.flags.items()}
        return {path: value for path, value in values.items() if value is not None}

    def build(self, args: argparse.Namespace, base: Config | None = None) -> Config:
        """The config the flags describe: ``base`` (or the only class's defaults) with every given flag on top."""
        if base is None:
            if len(self.classes) != 1:
                raise ValueError("several config classes share these flags: give the base config to build")
            cls, data = self.classes[0], {}
        else:
            cls, data = type(base), base.to_dict()
        for path, value in self.given(args).items():
            if cls not in self.flags[path].defaults:
                raise UsageError(self.not_applicable.format(flag=self.flags[path].flag, kind=cls.kind or cls.__name__))
            node = data
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return cls.from_dict(data)


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _class_defaults(cls: type) -> dict[str, Any]:
    """Each field's default value (a nested config's is its default instance)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = None
    return out


def _argument_kind(flag: ConfigFlag, split: bool) -> dict[str, Any]:
    """argparse arguments (type, choices, action, metavar) from the field's annotation."""
    hint = flag.hint
    metavar = flag.field.metadata.get("metavar")
    choices = literal_choices(hint)
    if choices is not None:
        return {"type": type(choices[0]), "choices": choices}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        (item, *_) = typing.get_args(hint) or (str,)
        if not isinstance(item, type) or issubclass(item, Config):
            raise TypeError(f"{'.'.join(flag.path)}: a list of {item} has no flag form; skip it")
        return {"action": _Extend, "item_type": item, "split": split,
                "metavar": metavar or ("A,B" if split else flag.path[-1].upper())}
    if hint in (int, float, str, Path):
        default_metavar = {int: "N", float: "X"}.get(hint, flag.path[-1].upper())
        return {"type": hint, "metavar": metavar or default_metavar}
    raise TypeError(f"{'.'.join(flag.path)}: no flag form for {hint!r}; skip it or give the field a plain type")


def _show(value: Any) -> str | None:
    """A default as help text shows it (None: not worth showing)."""
    if value is None or value == () or value == "":
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)
