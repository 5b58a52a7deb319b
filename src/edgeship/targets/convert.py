"""``edgeship.convert``: one model (an ONNX file or a PyTorch source) to one target's format.

    import edgeship
    tfl = edgeship.convert("digits.onnx", "tflite", "digits_int8.tflite", precision="int8",
                           calib="data:digits-test")
    pte = edgeship.convert("zoo:digits-cnn", "executorch", "digits.pte")

Targets whose converter starts from PyTorch (executorch, coreml) take the source; the others take
ONNX, and a PyTorch source given to them is exported to ONNX first (with edgeship's exporter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.core.registry import require
from edgeship.targets.base import Target, get_target
from edgeship.targets.util import is_torch_source, scratch_dir


def resolve_input(model_or_source: Any, trust_pickle: bool = False) -> Any:
    """A Model or a TorchSource from whatever the user gave (Model, TorchSource, path, zoo:NAME)."""
    if isinstance(model_or_source, Model) or is_torch_source(model_or_source):
        return model_or_source
    text = str(model_or_source)
    if text.startswith("zoo:") or ".py:" in text or text.endswith(".pt2") or (
            Path(text).is_dir() and (Path(text) / "config.json").exists()):
        try:
            from edgeship.export.sources import load_source
        except ModuleNotFoundError:  # the exporter's source loader not present: zoo names still work
            if not text.startswith("zoo:"):
                raise BadInput(f"cannot load the PyTorch source {text!r} here; export it to ONNX first") from None
            from edgeship.zoo.base import load_zoo

            return load_zoo(text)
        return load_source(text, trust_pickle=trust_pickle)
    return Model.open(text)


def _ensure_installed(target: Target) -> None:
    avail = target.availability()
    if not avail.installed:
        if target.modules:
            for mod in target.modules:
                require(mod, target.extra, f"{mod} (needed by target {target.name!r})")
        raise NotRunnableHere(f"target {target.name!r} cannot convert here: {avail.why}")


def convert(model_or_source: Any, target: str, out: str | Path, precision: str | None = None, calib: Any = None,
            **options: Any) -> Model:
    """Convert to ``target``'s format at ``out``; returns the new Model (its sidecar written).

    ``calib`` is a Dataset or a data spec (``data:digits-test``, ``calib.npz``) for INT8 variants;
    ``options`` are the target's own config fields (see ``edgeship targets``); ``precision``
    defaults to the target's first (fp32, or int8 for tflite-micro)."""
    tgt = get_target(target)
    precision = precision or tgt.precisions[0]
    if precision not in tgt.precisions:
        raise BadInput(f"target {target!r} has no precision {precision!r}; choose one of {', '.join(tgt.precisions)}")
    check_options(tgt, options)
    out = check_output_path(out)
    _ensure_installed(tgt)
    subject = resolve_input(model_or_source)
    if is_torch_source(subject) and "torch" not in tgt.formats:
        return _convert_via_onnx(subject, tgt, out, precision, calib, **options)
    if isinstance(subject, Model) and subject.format not in tgt.formats:
        wants = " or ".join("a PyTorch source (zoo:NAME, net.py:factory)" if f == "torch" else f"a .{f} file"
                            for f in tgt.formats)
        raise BadInput(f"target {target!r} converts from {wants}, not from a {subject.format} file "
                       f"({subject.path.name})")
    return tgt.convert(subject, out, precision=precision, calib=calib, **options)


def check_options(tgt: Target, options: dict[str, Any]) -> None:
    """Options are the fields of the target's typed config; anything else is a one-line BadInput."""
    import dataclasses

    cls = getattr(tgt, "config_class", None)
    allowed = {f.name for f in dataclasses.fields(cls)} - {"precision"} if cls else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise BadInput(f"target {tgt.name!r} has no option(s) {', '.join(unknown)}; "
                       f"options: {', '.join(sorted(allowed)) or 'none'}")


def _convert_via_onnx(source: Any, tgt: Target, out: Path, precision: str, calib: Any, **options: Any) -> Model:
    try:
        from edgeship.export.exporter import export
    except ModuleNotFoundError:
        raise BadInput(f"target {tgt.name!r} converts from ONNX; export the model first: "
                       f"edgeship export {source.name} -o model.onnx") from None
    with scratch_dir(out) as work:
        onnx_model = export(source, work / "model.onnx")
        return tgt.convert(onnx_model, out, precision=precision, calib=calib, **options)
