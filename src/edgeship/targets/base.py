"""Runners and targets.

A ``Runner`` runs one model on one runtime: ``with make_runner(model) as r: outs = r.infer(feeds)``.
Its session is built lazily, once, on first use, and the time that took is ``load_time_s``.

A ``Target`` is a deployment runtime, described by data: the formats it takes and makes, the
precisions its typed config offers, what it needs installed, and — as ``"module:name"`` references
imported on first use — its converter and its Runner. A target's own module (``targets/<name>/target.py``)
registers an instance with :func:`register_target`; a subclass overrides only what the description
cannot say: whether it can run on this machine beyond installed modules, and where a model's ops run
(:meth:`Target.placement`). Heavy back-ends are imported inside methods, never at import.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgeship.core.artifact import IOSpec, Model
from edgeship.core.config import Config
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.core.registry import Registry, is_installed
from edgeship.sources.subject import Subject
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.util import require_torch_source, run_rows

if TYPE_CHECKING:
    from edgeship.core.data import Dataset
    from edgeship.targets.placement import PlacementReport

Feeds = dict[str, np.ndarray]


class Runner:
    """Base runner: subclasses implement ``_build`` (returns a session) and ``_infer``.

    ``threads`` is the runtime's intra-op thread count (None: the runtime's own choice); runtimes
    that cannot set it accept and ignore it, so every runner is built the same way."""

    runtime: ClassVar[str] = ""

    def __init__(self, model: Model, threads: int | None = None) -> None:
        self.model = model
        self.threads = threads
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
            from edgeship.core.logs import third_party_output

            t0 = time.perf_counter()
            with third_party_output():  # runtimes' load-time banners (delegates, CPU probes)
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
        if self._one_row_at_a_time(session):
            return run_rows(feeds, lambda row: self._infer(session, row))
        return self._infer(session, feeds)

    def inputs_in_order(self, feeds: Feeds, names: Sequence[str]) -> list[np.ndarray]:
        """The arrays of ``names``, in that order (what positional interpreters take); inputs the
        model lacks are ignored and a missing one is a BadInput naming it."""
        missing = [n for n in names if n not in feeds]
        if missing:
            raise BadInput(f"feeds lack input(s) {', '.join(missing)} of {self.model.path.name}")
        return [np.asarray(feeds[n]) for n in names]

    def _one_row_at_a_time(self, session: Any) -> bool:
        """Whether the built program takes one row per call (a fixed batch of 1): ``infer`` then
        feeds the rows one by one and stacks the outputs."""
        return False

    def _build(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Availability:
    installed: bool
    runs_here: bool
    why: str = ""


@dataclasses.dataclass(frozen=True)
class TargetConfig(Config):
    """Base of the targets' conversion configs: ``precision`` is one of the class's ``precisions``
    (the first is the default). Subclasses add their fields and check them in ``validate`` (calling
    this one first) with :meth:`choose` and :meth:`at_least`, so every message reads alike."""

    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    precision: str = "fp32"

    @property
    def target(self) -> str:
        """The target's name, for messages (``kind`` is ``target-<name>``)."""
        return self.kind.removeprefix("target-")

    def validate(self) -> None:
        self.choose("precision", self.precisions)

    def choose(self, field: str, choices: Sequence[Any]) -> None:
        value = getattr(self, field)
        if value not in choices:
            names = ", ".join("unset" if c is None else str(c) for c in choices)
            raise BadInput(f"{self.target} {field} {value!r}; choose one of {names}")

    def at_least(self, minimum: int, *fields: str) -> None:
        for field in fields:
            value = getattr(self, field)
            if value < minimum:
                raise BadInput(f"{self.target} {field} must be >= {minimum}, got {value}")


def load_ref(ref: str) -> Any:
    """The object a ``"package.module:name"`` reference names (imported now)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclasses.dataclass(frozen=True)
class Target:
    """A deployment target. Instances are registered by name; see the module docstring."""

    name: str
    runner_ref: str  # "module:Class" of its Runner
    converter_ref: str = ""  # "module:function" (model, out, config, calib) -> Model
    config_class: type[TargetConfig] | None = None  # its conversion options; None: it does not convert
    formats: tuple[str, ...] = ("onnx",)  # what convert() takes ("torch": a PyTorch source)
    output_format: str = "onnx"
    runs_format: str | None = None  # files it runs by default (None: its output format; "": none)
    extra: str = ""  # pip extra that installs it
    modules: tuple[str, ...] = ()  # importable modules it needs
    report_name: str = ""  # name in reports, e.g. "onnxruntime-cpu" (default: its name)
    suffix: str = ""  # output file suffix (default: "." + output format)
    note: str = ""
    refuse_unless_runnable: bool = False  # runner() raises NotRunnableHere where it cannot run

    def __post_init__(self) -> None:
        # descriptions left unset follow from the others (frozen: set once, here)
        if self.runs_format is None:
            object.__setattr__(self, "runs_format", self.output_format)
        if not self.report_name:
            object.__setattr__(self, "report_name", self.name)
        if not self.suffix:
            object.__setattr__(self, "suffix", f".{self.output_format}")

    @property
    def precisions(self) -> tuple[str, ...]:
        return self.config_class.precisions if self.config_class else ("fp32",)

    @property
    def reports_placement(self) -> bool:
        """Whether :meth:`placement` can say where a model's ops run on this target."""
        return type(self).placement is not Target.placement

    # -- can it run here -------------------------------------------------------------------------
    def availability(self) -> Availability:
        missing = [m for m in self.modules if not is_installed(m)]
        if missing:
            return Availability(False, False, f"install edgeship[{self.extra}] ({', '.join(missing)} missing)")
        why = self.why_not_here()
        return Availability(True, not why, why)

    def why_not_here(self) -> str:
        """With its modules installed: why it still cannot run on this machine ("" when it can)."""
        return ""

    def require_runnable(self) -> None:
        avail = self.availability()
        if not avail.runs_here:
            raise NotRunnableHere(avail.why)

    # -- convert ---------------------------------------------------------------------------------
    def config(self, precision: str | None = None, **options: Any) -> TargetConfig:
        """The typed config of one conversion: ``precision`` (default: the target's first) and the
        config's fields as ``options`` (coerced like a config file); anything else is a BadInput."""
        cls = self.config_class
        if cls is None:
            raise BadInput(f"target {self.name!r} cannot convert models")
        precision = precision or cls.precisions[0]
        if precision not in cls.precisions:
            raise BadInput(f"target {self.name!r} has no precision {precision!r}; "
                           f"choose one of {', '.join(cls.precisions)}")
        allowed = {f.name for f in dataclasses.fields(cls)} - {"precision"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise BadInput(f"target {self.name!r} has no option(s) {', '.join(unknown)}; "
                           f"options: {', '.join(sorted(allowed)) or 'none'}")
        return cls.from_dict({"precision": precision, **options})

    def convert(self, model: Model | TorchSource, out: str | Path, precision: str | None = None,
                calib: Dataset | str | None = None, **options: Any) -> Model:
        """Convert ``model`` (a Model, or a TorchSource where ``formats`` has "torch") to ``out``.
        ``calib`` is a Dataset or a data spec for the precisions that calibrate."""
        cfg = self.config(precision, **options)
        if self.formats == ("torch",):
            model = require_torch_source(model, self.name)
        converter: Callable[..., Model] = load_ref(self.converter_ref)
        return converter(model, Path(out), cfg, calib)

    def why_cannot_convert(self, model: Model, precision: str) -> str:
        """Why this target's converter cannot make ``precision`` from ``model`` ("" when it can): what
        planners ask before any work; the converter itself raises the same as a BadInput."""
        return ""

    # -- run -------------------------------------------------------------------------------------
    def runner(self, model: Model | TorchSource, **options: Any) -> Runner:
        """A Runner for ``model`` (options are the Runner's own: threads, device, ...)."""
        if self.refuse_unless_runnable:
            self.require_runnable()
        return load_ref(self.runner_ref)(model, **options)

    # -- where ops run ---------------------------------------------------------------------------
    def placement(self, model: Model, **options: Any) -> PlacementReport:
        """Where each op of ``model`` runs on this target (targets that can tell override this)."""
        raise BadInput(f"target {self.name!r} cannot report op placement")


# The modules that register a target on import (each imports its back-end only when used).
TARGETS: Registry[Target] = Registry("target", modules=[
    "edgeship.targets.onnxruntime.target", "edgeship.targets.torch.target", "edgeship.targets.openvino.target",
    "edgeship.targets.tflite.target", "edgeship.targets.tflite_micro.target", "edgeship.targets.executorch.target",
    "edgeship.targets.coreml.target", "edgeship.targets.tensorrt.target"])


def register_target(target: Target) -> Target:
    """Register a target instance under its name (a duplicate name is an error)."""
    return TARGETS.add(target.name, target)


def get_target(name: str) -> Target:
    return TARGETS.get(name)


def all_targets() -> list[Target]:
    return [t for _, t in TARGETS.items()]


def runner_for(model: Model, target: str | None = None, **options: Any) -> Runner:
    """The runner for a model: on ``target`` if given, else the first target that takes its format."""
    if target:
        return get_target(target).runner(model, **options)
    for t in all_targets():
        if t.runs_format == model.format:
            return t.runner(model, **options)
    raise BadInput(f"no runtime runs {model.format} files; choose one with --runtime")


def runner_for_subject(subject: Subject, **options: Any) -> Runner:
    """The runner of a check's or benchmark's subject: its PyTorch source eagerly, or its model file on
    the subject's runtime (by format when none is named)."""
    if subject.source is not None:
        return get_target("torch").runner(subject.source, threads=options.get("threads"))
    if subject.model is None:
        raise BadInput(f"{subject.name}: stored golden outputs cannot be run; they are the reference")
    return runner_for(subject.model, subject.runtime, **options)
