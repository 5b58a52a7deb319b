"""Publishing models to the update repository, one file or the chosen variants of an optimize run.

A release is two TUF targets: ``models/NAME/VERSION/FILE`` (the model) and
``models/NAME/VERSION/golden.npz`` (held-out inputs and reference outputs), plus one target per
companion file of a model that keeps its weights beside it (OpenVINO's ``.bin``, ONNX external
data), listed under ``files`` in the model's metadata. A model that is a folder (a Core ML
``.mlpackage``) travels as one deterministic tar archive (``FILE.mlpackage.tar``, metadata
``"unpack": "tar", "model_path": "FILE.mlpackage"``) that the device unpacks into its slot. The
model's custom metadata, signed with the targets role, carries what a device needs to decide before
downloading (runtime, format, precision, IO spec, minimum agent version, and for a TensorRT engine
``device_requirements``: the TensorRT version and GPU it was built for) and what its health check
needs after (golden file, gates, latency budget)::

    {"edgeship": {"kind": "model", "name": "digits-cnn", "version": "1.0.0", "format": "onnx",
                  "target_runtime": "onnxruntime-cpu", "precision": "fp32", "io": {...},
                  "gates": ["cosine_min>=0.98"], "latency_budget_us": 1500, "min_agent_version": "0.1.0",
                  "sha256": "...", "golden": "models/digits-cnn/1.0.0/golden.npz"}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from edgeship.core.errors import BadInput
from edgeship.ship.repository import ShipRepository, check_name
from edgeship.ship.slots import plain_file_name

LATENCY_BUDGET_FACTOR = 3.0  # budget = 3 × the p99 measured when the model was benchmarked...
LATENCY_BUDGET_FLOOR_MS = 1.0  # ...but not under 1 ms, where scheduling noise outweighs the model
DEFAULT_GATES = ("cosine_min>=0.99",)
PUBLISHABLE_SUFFIXES = (".onnx", ".tflite", ".pte", ".engine", ".plan", ".xml")
FOLDER_SUFFIXES = (".mlpackage",)  # models that are folders: published as one tar archive, unpacked on the device
ENGINE_SUFFIXES = (".engine", ".plan")  # TensorRT engines: they record the TensorRT and GPU they need


class Release(TypedDict):
    """One published release, as ``ship publish --json`` prints it."""

    name: str
    version: str
    channel: str
    target: str  # the model's target path in the repository
    previous: str | None  # the channel's release of this model before (a rollout's from_target)
    runtime: str
    precision: str
    sha256: str
    latency_budget_ms: float | None
    gates: list[str]
    files: list[str]  # companion files published beside the model
    skipped_variants: NotRequired[list[str]]  # a run's chosen variants that could not be published
    rollout: NotRequired[int]  # the id of the rollout started for it (ship publish --rollout)


def model_name_of(text: str) -> str:
    """A repository-safe model name from a source name such as ``zoo:digits-cnn`` or ``digits.onnx``."""
    base = text.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    base = re.sub(r"\.(onnx|tflite|pte|pt2|engine|plan|mlpackage)(\.tar)?$", "", base)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "model"


def companion_files(model_path: Path) -> list[Path]:
    """The files a model reads beside it: OpenVINO IR's ``.bin``; an ONNX file's external data."""
    if model_path.suffix == ".xml":
        weights = model_path.with_suffix(".bin")
        if not weights.is_file():
            raise BadInput(f"{model_path.name}: its weights file {weights.name} is missing beside it")
        return [weights]
    if model_path.suffix == ".onnx":
        import onnx

        from edgeship.core.onnx_file import external_data_locations

        try:
            proto = onnx.load(str(model_path), load_external_data=False)
        except Exception as exc:  # a truncated or foreign file: onnx raises assorted errors
            raise BadInput(f"{model_path.name} is not a readable ONNX file ({type(exc).__name__})") from None
        names = external_data_locations(proto)
        # the device stages every file flat in one slot folder, so only plain names can travel
        for n in names:  # a location outside the model's folder is refused, not followed
            if not plain_file_name(n) or not (model_path.parent / n).is_file():
                raise BadInput(f"{model_path.name}: its external data {n!r} must be a file beside it, in its folder")
        return [model_path.parent / n for n in names]
    return []


def release_metadata(model_path: Path, name: str, version: str, golden_target: str, runtime: str,
                     precision: str, gates: list[str], latency_budget_ms: float | None,
                     min_agent_version: str, files: dict[str, str] | None = None,
                     device_requirements: dict[str, str] | None = None,
                     package: Path | None = None) -> dict[str, Any]:
    from edgeship.core.artifact import file_sha256
    from edgeship.targets.hwmap.preflight import model_requirements

    model = _open_for_metadata(package or model_path)
    extra: dict[str, Any] = {"files": dict(files)} if files else {}
    graph_needs = model_requirements(model)  # what a runtime must have to load it (the agent's pre-flight)
    if graph_needs is not None:
        extra["model_requirements"] = graph_needs
    if device_requirements:  # checked by the agent before it downloads (edgeship.ship.requirements)
        extra["device_requirements"] = dict(device_requirements)
    if package is not None:  # the target is a tar archive of the folder model_path names
        extra.update(unpack="tar", model_path=package.name)
    return {"edgeship": {**extra,
        "kind": "model", "name": name, "version": version, "format": model.format, "target_runtime": runtime,
        "precision": precision, "io": model.io.to_dict(), "gates": list(gates),
        # Canonical JSON (what TUF signs) has no floats: the budget travels in whole microseconds.
        "latency_budget_us": None if latency_budget_ms is None else round(latency_budget_ms * 1000),
        "min_agent_version": min_agent_version,
        "sha256": file_sha256(model_path), "golden": golden_target}}


def _open_for_metadata(path: Path) -> Any:
    """The model as its metadata describes it; a TensorRT engine on a machine without TensorRT is
    described by its format alone (only a device with TensorRT reads its inputs and outputs)."""
    from edgeship.core.artifact import IOSpec, Model, format_of
    from edgeship.core.errors import EdgeshipError

    try:
        return Model.open(path)
    except EdgeshipError:
        if path.suffix not in ENGINE_SUFFIXES:
            raise
        return Model(path=path, format=format_of(path), io=IOSpec((), ()))


def pack_folder(folder: Path, out: Path) -> Path:
    """A deterministic tar archive of a folder model (sorted, no times or owners), its files under
    ``FOLDER_NAME/``; links and special files are refused."""
    import tarfile

    entries = sorted(p for p in folder.rglob("*"))
    bad = [p for p in entries if p.is_symlink() or not (p.is_file() or p.is_dir())]
    if bad or folder.is_symlink():
        raise BadInput(f"{folder.name}: {bad[0].relative_to(folder) if bad else folder.name} is a link or a special "
                       "file; a published folder holds plain files and folders only")
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for p in [folder, *entries]:
            info = tar.gettarinfo(str(p), arcname=str(Path(folder.name) / p.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if p.is_dir() else 0o644
            if p.is_dir():
                tar.addfile(info)
            else:
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
    return out


def publish_model(repo: ShipRepository, model_path: str | Path, golden: str | Path, channel: str, version: str,
                  name: str | None = None, runtime: str = "onnxruntime-cpu", precision: str = "fp32",
                  gates: Sequence[str] | None = None, latency_budget_ms: float | None = None,
                  min_agent_version: str | None = None,
                  device_requirements: Mapping[str, str] | None = None) -> Release:
    """Publish one model (a file, or a folder such as a Core ML ``.mlpackage``) with its golden file
    on ``channel``; returns the release summary. A TensorRT engine records the TensorRT version and
    GPU it needs (``device_requirements``; read on this machine when not given)."""
    model_path = Path(model_path)
    if model_path.is_dir() and model_path.suffix in FOLDER_SUFFIXES:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgeship-publish-") as tmp:
            archive = pack_folder(model_path, Path(tmp) / f"{model_path.name}.tar")
            return _publish_file(repo, archive, golden, channel, version, name, runtime, precision, gates,
                                 latency_budget_ms, min_agent_version, device_requirements, package=model_path)
    return _publish_file(repo, model_path, golden, channel, version, name, runtime, precision, gates,
                         latency_budget_ms, min_agent_version, device_requirements)


def _publish_file(repo: ShipRepository, model_path: Path, golden: str | Path, channel: str, version: str,
                  name: str | None, runtime: str, precision: str, gates: Sequence[str] | None,
                  latency_budget_ms: float | None, min_agent_version: str | None,
                  device_requirements: Mapping[str, str] | None, package: Path | None = None) -> Release:
    from edgeship import __version__
    from edgeship.core.golden import is_golden
    from edgeship.ship.requirements import engine_requirements

    golden = Path(golden)
    if not model_path.is_file():
        raise BadInput(f"model file {str(model_path)!r} not found")
    if model_path.suffix not in PUBLISHABLE_SUFFIXES and package is None:
        raise BadInput(f"{model_path.name}: only model files ({', '.join(PUBLISHABLE_SUFFIXES)}) and folders "
                       f"({', '.join(FOLDER_SUFFIXES)}) can be published")
    needs = dict(device_requirements or {})
    if model_path.suffix in ENGINE_SUFFIXES:
        needs = engine_requirements(needs)
    companions = companion_files(model_path)
    if not is_golden(golden):
        raise BadInput(f"golden file {str(golden)!r} not found or not a golden .npz; make one with "
                       "edgeship check --save-golden")
    name = check_name("model name", name or model_name_of((package or model_path).name))
    check_name("version", version)
    check_name("channel", channel)
    folder = f"models/{name}/{version}"
    target = f"{folder}/{model_path.name}"
    files = {f.name: f"{folder}/{f.name}" for f in companions}
    if "golden.npz" in files:
        raise BadInput(f"{model_path.name}: a companion file named golden.npz clashes with the release's golden file")
    existing = repo.targets()
    if any(t in existing for t in (target, f"{folder}/golden.npz", *files.values())):
        raise BadInput(f"{name} {version} is already published; give a new --version")
    custom = release_metadata(model_path, name, version, f"{folder}/golden.npz", runtime, precision,
                              list(gates or DEFAULT_GATES), latency_budget_ms, min_agent_version or __version__,
                              files=files, device_requirements=needs, package=package)
    previous = repo.channel(channel)["models"].get(name)
    new_targets = {target: (model_path, custom), f"{folder}/golden.npz": (golden, {"edgeship": {
        "kind": "golden", "model": target}})}
    for f in companions:
        new_targets[files[f.name]] = (f, {"edgeship": {"kind": "companion", "model": target}})
    repo.add_targets(new_targets, {channel: {name: target}})
    return {"name": name, "version": version, "channel": channel, "target": target, "previous": previous,
            "runtime": runtime, "precision": precision, "sha256": custom["edgeship"]["sha256"],
            "latency_budget_ms": latency_budget_ms, "gates": custom["edgeship"]["gates"],
            "files": sorted(files)}


def chosen_variants(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The variants of ``run_dir/report.json`` to ship: those marked chosen, else the fastest passing
    one per target."""
    f = run_dir / "report.json"
    if not f.is_file():
        raise BadInput(f"{str(run_dir)!r} has no report.json; run edgeship optimize first or give a model file")
    try:
        report = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise BadInput(f"{f}: not valid JSON ({exc.msg})") from None
    variants = report.get("variants") or []
    chosen = [v for v in variants if v.get("chosen")]
    if not chosen:
        best: dict[str, dict[str, Any]] = {}
        for v in variants:
            if not (v.get("gate") or {}).get("passed"):
                continue
            p50 = (v.get("latency_ms") or {}).get("p50", float("inf"))
            t = v.get("target", "?")
            if t not in best or p50 < (best[t].get("latency_ms") or {}).get("p50", float("inf")):
                best[t] = v
        chosen = list(best.values())
    if not chosen:
        raise BadInput(f"{f}: no variant passed its gate; nothing to publish")
    return report, chosen


def publish_run(repo: ShipRepository, run_dir: str | Path, channel: str, version: str,
                min_agent_version: str | None = None, name: str | None = None) -> list[Release]:
    """Publish the chosen variants of an optimize run (one release per target runtime)."""
    run_dir = Path(run_dir)
    report, chosen = chosen_variants(run_dir)
    golden = run_dir / report.get("golden", "golden.npz")
    base = name or model_name_of(str(report.get("model", run_dir.name)))
    releases: list[Release] = []
    skipped: list[str] = []
    for v in chosen:
        path = Path(v["path"])
        if not path.is_absolute():
            path = run_dir / path
        p99 = (v.get("latency_ms") or {}).get("p99")
        budget = round(max(LATENCY_BUDGET_FACTOR * float(p99), LATENCY_BUDGET_FLOOR_MS), 3) if p99 else None
        gates = list((v.get("gate") or {}).get("gates") or report.get("gates") or DEFAULT_GATES)
        rel_name = base if len(chosen) == 1 else f"{base}-{model_name_of(v.get('target', 'target'))}"
        try:
            releases.append(publish_model(
                repo, path, golden, channel, version, name=rel_name, runtime=v.get("target", "onnxruntime-cpu"),
                precision=v.get("precision", "fp32"), gates=gates,
                latency_budget_ms=budget, min_agent_version=min_agent_version))
        except BadInput as exc:  # one variant that cannot ship does not stop the others
            skipped.append(f"{v.get('id', path.name)}: {exc}")
    if not releases:
        raise BadInput(f"{run_dir}: no chosen variant could be published: {'; '.join(skipped)}")
    for rel in releases:
        rel["skipped_variants"] = skipped
    return releases


def publish(repo: ShipRepository | str | Path, source: str | Path, channel: str, version: str,
            golden: str | Path | None = None, *, name: str | None = None, runtime: str = "onnxruntime-cpu",
            precision: str = "fp32", gates: Sequence[str] | None = None, latency_budget_ms: float | None = None,
            min_agent_version: str | None = None,
            device_requirements: Mapping[str, str] | None = None) -> list[Release]:
    """``ship publish``: a run directory (its chosen variants; their runtime, precision, gates and
    latency budget come from its report) or a model file with ``golden``."""
    repo = repo if isinstance(repo, ShipRepository) else ShipRepository(repo)
    src = Path(source)
    if src.is_dir() and src.suffix not in FOLDER_SUFFIXES:
        return publish_run(repo, src, channel, version, min_agent_version, name)
    if golden is None:
        raise BadInput("publishing a model file needs --golden FILE.npz (inputs and reference outputs)")
    return [publish_model(repo, src, golden, channel, version, name=name, runtime=runtime, precision=precision,
                          gates=gates, latency_budget_ms=latency_budget_ms, min_agent_version=min_agent_version,
                          device_requirements=device_requirements)]
