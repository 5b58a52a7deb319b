"""Runners and targets.

A ``Runner`` runs one model on one runtime: ``with make_runner(model) as r: outs = r.infer(feeds)``.
Its session is built lazily, once, on first use, and the time that took is ``load_time_s``.

A ``Target`` is a deployment runtime: the formats it takes, the precisions it offers, how it
converts a model, whether it can run on this machine, and its Runner. Targets register by name
with ``@register_target``; their heavy imports happen inside methods, never at import.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry, is_installed

Feeds = dict[str, np.ndarray]


class Runner:
    """Base runner: subclasses implement ``_build`` (returns a session) and ``_infer``."""

    runtime: ClassVar[str] = ""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._session: Any = None
        self.load_time_s: float | None = None

    @property
    def io(self) -> IOSpec:
        return self.model.io

    @property
    def name(self) -> str:
        return f"{self.runtime}:{self.model.path.name}"

    def activate(self) -> Any:
        if self._session is None:
            t0 = time.perf_counter()
            self._session = self._build()
            self.load_time_s = time.perf_counter() - t0
        return self._session

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session = None

    def infer(self, feeds: Feeds) -> Feeds:
        session = self.activate()
        return self._infer(session, feeds)

    def _build(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Availability:
    installed: bool
    runs_here: bool
    why: str = ""


class Target:
    """A deployment target. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = ""
    formats: ClassVar[tuple[str, ...]] = ("onnx",)  # formats convert() takes
    output_format: ClassVar[str] = "onnx"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    extra: ClassVar[str] = ""  # pip extra that installs it
    modules: ClassVar[tuple[str, ...]] = ()  # importable modules it needs
    report_name: ClassVar[str] = ""  # name in reports, e.g. "onnxruntime-cpu"
    runs_format: ClassVar[str] = ""  # the format its Runner runs

    def availability(self) -> Availability:
        missing = [m for m in self.modules if not is_installed(m)]
        if missing:
            return Availability(False, False, f"install edgeship[{self.extra}] ({', '.join(missing)} missing)")
        return Availability(True, True, "")

    def convert(self, model: Model, out: Path, precision: str = "fp32", calib: Any = None,
                **options: Any) -> Model:
        raise BadInput(f"target {self.name!r} cannot convert models")

    def runner(self, model: Model, **options: Any) -> Runner:  # pragma: no cover - abstract
        raise NotImplementedError


# Packages that register a target on import (each imports its back-end only when used).
TARGETS: Registry[Target] = Registry("target", modules=[
    "edgeship.targets.onnxruntime", "edgeship.targets.torch", "edgeship.targets.openvino", "edgeship.targets.tflite",
    "edgeship.targets.tflite_micro", "edgeship.targets.executorch", "edgeship.targets.coreml",
    "edgeship.targets.tensorrt"])


def register_target(cls: type[Target]) -> type[Target]:
    """Class decorator: ``@register_target`` on a Target subclass with ``name`` set."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    TARGETS.add(cls.name, cls())
    return cls


def get_target(name: str) -> Target:
    return TARGETS.get(name)


def all_targets() -> list[Target]:
    return [t for _, t in TARGETS.items()]


def runner_for(model: Model, target: str | None = None, **options: Any) -> Runner:
    """The runner for a model: on ``target`` if given, else the first target that takes its format."""
    if target:
        return get_target(target).runner(model, **options)
    for t in all_targets():
        if getattr(t, "runs_format", None) == model.format:
            return t.runner(model, **options)
    raise BadInput(f"no runtime runs {model.format} files; choose one with --runtime")
