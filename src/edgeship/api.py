"""The Python API in one place: every CLI verb is a function here, taking the same typed config.

    from edgeship import api

    source = api.load_source("zoo:digits-cnn")
    model = api.export(source, "digits.onnx")
    result = api.check(source, [model], data="data:digits-test")

Each verb takes its config object (or that config's fields as keywords) and returns a typed result:
a :class:`~edgeship.core.artifact.Model` for the verbs that write a model, a dataclass for the others.
(``export``, ``check`` and ``bench`` are also package names, so they live here rather than as
attributes of ``edgeship`` itself.) Importing this module is light; each function imports its
back-end on first call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: importing these here would make ``import edgeship.api`` heavy
    from edgeship.bench.harness import BenchConfig
    from edgeship.bench.regression import Comparison
    from edgeship.check.comparator import CheckConfig, CheckResult
    from edgeship.compress.common import CompressResult
    from edgeship.compress.distill.config import DistillConfig
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.qat.config import QatConfig
    from edgeship.compress.quantize.configs import QuantConfig
    from edgeship.core.artifact import IOSpec, Model
    from edgeship.core.data import Dataset
    from edgeship.export.config import ExportConfig
    from edgeship.pipeline.executors import ExecutorConfig
    from edgeship.pipeline.recipe import OptimizeRecipe
    from edgeship.ship.agent import AgentConfig
    from edgeship.ship.outcome import Outcome
    from edgeship.ship.publish import Release
    from edgeship.ship.rollout.config import RolloutConfig, RolloutPlan
    from edgeship.sources.torch_source import TorchSource
    from edgeship.targets.hwmap.profiles import MapTarget
    from edgeship.targets.hwmap.result import HardwareMap

def load_source(spec: str | Path, trust_pickle: bool = False,
                shapes: dict[str, tuple[int, ...]] | None = None) -> TorchSource | Model:
    """A PyTorch source (``zoo:NAME``, ``file.py:factory``, ``.pt2``, HF folder) or a model file."""
    from edgeship.sources.resolve import resolve

    return resolve(spec, trust_pickle=trust_pickle, shapes=shapes)


def export(source: str | Path | TorchSource | Model, out: str | Path, config: ExportConfig | None = None, *,
           data: str | Path | Dataset | None = None, trust_pickle: bool = False,
           shapes: dict[str, tuple[int, ...]] | None = None,
           progress: Callable[[str], None] | None = None) -> Model:
    """Export to ONNX with a parity check; see :func:`edgeship.export.exporter.export`."""
    from edgeship.export.exporter import export as impl

    return impl(source, out, config, data, trust_pickle=trust_pickle, shapes=shapes, progress=progress)


def check(reference: Any, candidates: list[Any], data: str | Path | Dataset | None = None,
          config: CheckConfig | None = None, *, progress: bool = False, **options: Any) -> CheckResult:
    """Compare candidates with a reference (a model, a source spec or a golden .npz) under gates;
    ``options`` are :class:`~edgeship.check.comparator.CheckConfig` fields."""
    from edgeship.check.comparator import check as impl

    return impl(reference, candidates, data, config, progress=progress, **options)


def bench(model: Any, data: str | Path | Dataset | None = None, config: BenchConfig | None = None,
          **options: Any) -> dict[str, Any]:
    """Benchmark one model in a fresh process; ``options`` are :class:`~edgeship.bench.harness.BenchConfig`
    fields. Returns the record ``edgeship bench --json`` prints."""
    from edgeship.bench.harness import bench as impl

    return impl(model, data, config, **options)


def bench_compare(baseline: str | Path | list[dict[str, Any]] | dict[str, Any], results: list[dict[str, Any]],
                  max_slowdown: float | str = 0.05, *, allow_different_system: bool = False) -> list[Comparison]:
    """The regression gate: each result against the baseline (a file ``edgeship bench --json`` wrote, or
    its records) by a statistical test; returns :class:`~edgeship.bench.regression.Comparison` per model."""
    from edgeship.bench.regression import compare_all, load_baseline, parse_slowdown

    base = load_baseline(str(baseline)) if isinstance(baseline, str | Path) else baseline
    return compare_all(base, results, parse_slowdown(max_slowdown), allow_different_system=allow_different_system)


def quantize(model: str | Path | Model, config: QuantConfig, out: str | Path | None = None,
             calib: str | Path | Dataset | None = None, eval_data: str | Path | Dataset | None = None,
             progress: Callable[[str], None] | None = None,
             verify_data: str | Path | Dataset | None = None) -> Model:
    """Quantize an ONNX model with a typed config (``Fp16Config``, ``Int8StaticConfig``, ``MixedConfig``, ...);
    ``eval_data`` is what a search selects on, ``verify_data`` what its choice must also pass."""
    from edgeship.compress.quantize.api import quantize as impl

    return impl(model, config, out=out, calib=calib, eval_data=eval_data, progress=progress, verify_data=verify_data)


def compress(source: str | Path | TorchSource, config: PruneConfig | DistillConfig | QatConfig,
             data: str | Path | Dataset | None = None, out: str | Path | None = None,
             eval_data: str | Path | Dataset | None = None, *, quiet: bool = False, fresh: bool = False,
             trust_pickle: bool = False) -> CompressResult:
    """Run the compression step registered for the config's type on a PyTorch source (``prune``,
    ``distill`` and ``qat`` below are this with their config); ``out`` (.onnx or .pt2) is written when given."""
    from edgeship.compress.steps import compress as impl
    from edgeship.sources.resolve import resolve_torch

    src = resolve_torch(source, trust_pickle=trust_pickle, what="compression")
    return impl(src, config, data=data, out=out, eval_data=eval_data, quiet=quiet, fresh=fresh)


def prune(source: str | Path | TorchSource, config: PruneConfig, data: str | Path | Dataset | None = None,
          out: str | Path | None = None, eval_data: str | Path | Dataset | None = None, *,
          quiet: bool = False, fresh: bool = False) -> CompressResult:
    """Structured or unstructured pruning, fine-tuned on ``data`` when ``config.train.epochs`` > 0."""
    return compress(source, config, data, out, eval_data, quiet=quiet, fresh=fresh)


def distill(teacher: str | Path | TorchSource, config: DistillConfig, data: str | Path | Dataset | None = None,
            out: str | Path | None = None, eval_data: str | Path | Dataset | None = None, *,
            quiet: bool = False, fresh: bool = False) -> CompressResult:
    """Distill the teacher into the student ``config.student`` names."""
    return compress(teacher, config, data, out, eval_data, quiet=quiet, fresh=fresh)


def qat(source: str | Path | TorchSource, config: QatConfig, data: str | Path | Dataset | None,
        out: str | Path | None = None, eval_data: str | Path | Dataset | None = None, *,
        quiet: bool = False, fresh: bool = False) -> CompressResult:
    """Quantization-aware training (fake-quant fine-tune) written as a quantized ONNX file."""
    return compress(source, config, data, out, eval_data, quiet=quiet, fresh=fresh)


def convert(model: str | Path | TorchSource | Model, target: str, out: str | Path, precision: str | None = None,
            calib: str | Path | Dataset | None = None, *, select: str | Path | Dataset | None = None,
            gates: list[str] | tuple[str, ...] | None = None, **options: Any) -> Model:
    """Convert for a deployment target (``options``: the target's config fields); a PyTorch source
    given to an ONNX-only target is exported first with edgeship's exporter. ``select`` (data
    disjoint from ``calib`` and from your test data) lets a target that searches its INT8 settings
    (OpenVINO) choose them on it and its probes, under ``gates`` (default: the model's)."""
    from edgeship.export.exporter import export as exporter
    from edgeship.targets.convert import convert as impl

    factory = None
    if select is not None:
        from edgeship.check.selection import selector_for

        factory = selector_for(select, gates, calib, precision or "int8")
    elif gates:
        from edgeship.core.errors import UsageError

        raise UsageError("--gate judges the candidates of a search; give the data to judge on with --select")
    return impl(model, target, out, precision, calib, exporter=exporter, selector_for=factory, **options)


def optimize(recipe: OptimizeRecipe | str | Path | dict[str, Any], executor: ExecutorConfig | None = None,
             ) -> dict[str, Any]:
    """Run an optimize recipe (variants × targets); returns the report (also written as report.json).
    ``executor`` runs its independent jobs: local processes by default, or a Ray cluster."""
    from edgeship.pipeline.optimize import optimize as impl

    return impl(recipe, executor)


def load_data(spec: str | Path | Dataset, io: IOSpec, **kwargs: Any) -> Dataset:
    """Load data fitted to a model's IO spec; see :func:`edgeship.core.data.load_data`."""
    from edgeship.core.data import load_data as impl

    return impl(spec, io, **kwargs)


# -- what is here: the listing verbs -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TargetInfo:
    """One deployment target as ``edgeship targets`` lists it."""

    target: str
    installed: bool
    runs_here: bool
    precisions: tuple[str, ...]
    takes: tuple[str, ...]  # "onnx", "PyTorch source", ...
    output: str
    why_not: str
    note: str
    extra: str
    # per precision, the instruction sets of this CPU its arithmetic runs on (targets that run here)
    instructions: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "precisions": list(self.precisions), "takes": list(self.takes)}


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """A bundled model (``zoo:NAME``) or data set (``data:NAME``)."""

    name: str
    about: str
    splits: tuple[str, ...] = ()
    default_split: str | None = None


def target(name: str) -> TargetInfo:
    """One target by name (an unknown name is a BadInput listing the known ones)."""
    from edgeship.targets.base import get_target
    from edgeship.targets.cpu import cpu_info

    t = get_target(name)
    avail = t.availability()
    # every target that runs on this machine runs on its CPU (no accelerator is reachable from here)
    instructions = {p: cpu_info().describe(p) for p in t.precisions} if avail.runs_here else {}
    return TargetInfo(t.name, avail.installed, avail.runs_here, tuple(t.precisions),
                      tuple("PyTorch source" if f == "torch" else f for f in t.formats), t.output_format,
                      avail.why, getattr(t, "note", ""), t.extra, instructions)


def targets() -> list[TargetInfo]:
    """Every registered target: installed? runs here (and why not)? precisions, inputs, output format."""
    from edgeship.targets.base import TARGETS

    return [target(name) for name in TARGETS.names()]


def zoo() -> list[CatalogEntry]:
    """The bundled models, with the first line of each factory's docstring."""
    from edgeship.zoo.base import ZOO

    return [CatalogEntry(f"zoo:{name}", ((factory.__doc__ or "").strip().splitlines() or [""])[0])
            for name, factory in ZOO.items()]


def data_sets() -> list[CatalogEntry]:
    """The registered data sets (``data:NAME``) with their splits."""
    from edgeship.core.data import data_sources

    return [CatalogEntry(f"data:{s.name}", s.description, tuple(s.splits), s.default_split) for s in data_sources()]


def inspect(path: str | Path) -> Model:
    """Open a model file (an ONNX file fully validated) with its IO spec, provenance and facts."""
    from edgeship.core.artifact import Model
    from edgeship.core.onnx_file import load

    model = Model.open(path)
    if model.format == "onnx":
        load(model.path, load_weights=True, check=True)  # a full validation, not just the header
    return model


# -- ship: the update repository, rollouts, the device -------------------------------------------------
def publish(repo: str | Path, source: str | Path, channel: str, version: str, *,
            golden: str | Path | None = None, name: str | None = None, runtime: str = "onnxruntime-cpu",
            precision: str = "fp32", gates: list[str] | tuple[str, ...] | None = None,
            latency_budget_ms: float | None = None, min_agent_version: str | None = None,
            rollout: RolloutPlan | None = None) -> list[Release]:
    """Publish a model file (with its golden outputs) or a run's chosen variants to a signed TUF
    repository on ``channel``; with a ``rollout`` plan, start a staged rollout of each release."""
    from edgeship.ship.verbs import publish_release

    return publish_release(repo, source, channel, version, golden=golden, name=name, runtime=runtime,
                           precision=precision, gates=gates, latency_budget_ms=latency_budget_ms,
                           min_agent_version=min_agent_version, rollout=rollout)


def start_rollout(url: str, config: RolloutConfig, token_file: str | Path | None = None) -> dict[str, Any]:
    """Start a staged rollout on the rollout service at ``url``; the rollout as the service stores it."""
    from edgeship.ship.verbs import start_rollout as impl

    return impl(url, config, token_file)


def agent_run_once(config: AgentConfig) -> Outcome:
    """One update cycle of a device: check for a release, verify, stage, health-check, switch."""
    from edgeship.ship.verbs import agent_run_once as impl

    return impl(config)


# -- where a model's ops run on a target's NPU, GPU and CPU ------------------------------------------
def map(model: str | Path | TorchSource | Model, target: str, *, device_runtime: str | None = None,
        memory_budget: int | None = None, shapes: dict[str, tuple[int, ...]] | None = None,
        crosscheck: bool = False, trust_pickle: bool = False) -> HardwareMap:
    """The hardware map of a model on a map target (``edgeship map --list-targets``): the unit of
    every node, the partitions and what their hand-offs cost, the nodes that cause splits with a
    suggestion each, and the pre-flight problems that would keep it from loading. A PyTorch source
    is exported to ONNX first (without a parity check: the map needs only the graph)."""
    import tempfile

    from edgeship.core.artifact import Model
    from edgeship.export.config import ExportConfig
    from edgeship.targets.hwmap.run import map_model

    source = model if not isinstance(model, str | Path) else load_source(model, trust_pickle=trust_pickle)
    options: dict[str, Any] = {"device_runtime": device_runtime, "memory_budget": memory_budget, "shapes": shapes,
                               "crosscheck": crosscheck}
    if isinstance(source, Model):
        return map_model(source, target, **options)
    with tempfile.TemporaryDirectory(prefix="edgeship-map-") as tmp:
        onnx = export(source, Path(tmp) / "model.onnx", ExportConfig(parity=False))
        return map_model(onnx, target, source=source, label=str(model), **options)


def map_targets() -> list[MapTarget]:
    """The hardware-map targets, each with its units in policy order and their rule sets."""
    from edgeship.targets.hwmap.profiles import all_map_targets

    return all_map_targets()
