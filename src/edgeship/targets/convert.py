"""``edgeship.convert``: one model (an ONNX file or a PyTorch source) to one target's format.

    import edgeship
    tfl = edgeship.convert("digits.onnx", "tflite", "digits_int8.tflite", precision="int8",
                           calib="data:digits-test")
    pte = edgeship.convert("zoo:digits-cnn", "executorch", "digits.pte")

Targets whose converter starts from PyTorch (executorch, coreml) take the source; the others take
ONNX, and a PyTorch source given to them is exported to ONNX first by ``exporter`` — the caller's,
since the exporter sits above the targets (``edgeship.convert`` / ``api.convert`` pass edgeship's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.core.registry import require
from edgeship.sources.resolve import resolve
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.base import Target, get_target
from edgeship.targets.util import is_torch_source, scratch_dir


def _ensure_installed(target: Target) -> None:
    avail = target.availability()
    if not avail.installed:
        if target.modules:
            for mod in target.modules:
                require(mod, target.extra, f"{mod} (needed by target {target.name!r})")
        raise NotRunnableHere(f"target {target.name!r} cannot convert here: {avail.why}")


Exporter = Callable[[TorchSource, Path], Model]


def convert(model_or_source: Any, target: str, out: str | Path, precision: str | None = None, calib: Any = None,
            exporter: Exporter | None = None, **options: Any) -> Model:
    """Convert to ``target``'s format at ``out``; returns the new Model (its sidecar written).

    ``calib`` is a Dataset or a data spec (``data:digits-test``, ``calib.npz``) for INT8 variants;
    ``options`` are the target's own config fields (see ``edgeship targets``); ``precision``
    defaults to the target's first (fp32, or int8 for tflite-micro)."""
    tgt = get_target(target)
    tgt.config(precision, **options)  # a bad precision or option fails before anything is loaded
    out = check_output_path(out)
    _ensure_installed(tgt)
    subject = resolve(model_or_source)
    if is_torch_source(subject) and "torch" not in tgt.formats:
        if exporter is None:
            raise BadInput(f"target {tgt.name!r} converts from ONNX; export the model first "
                           f"(edgeship export {subject.name} -o model.onnx) or use edgeship.convert")
        with scratch_dir(out) as work:
            onnx_model = exporter(subject, work / "model.onnx")
            return tgt.convert(onnx_model, out, precision=precision, calib=calib, **options)
    if isinstance(subject, Model) and subject.format not in tgt.formats:
        wants = " or ".join("a PyTorch source (zoo:NAME, net.py:factory)" if f == "torch" else f"a .{f} file"
                            for f in tgt.formats)
        raise BadInput(f"target {target!r} converts from {wants}, not from a {subject.format} file "
                       f"({subject.path.name})")
    return tgt.convert(subject, out, precision=precision, calib=calib, **options)
