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
from edgeship.targets.base import Target, all_targets, get_target
from edgeship.targets.util import is_torch_source, scratch_dir


def _ensure_installed(target: Target) -> None:
    avail = target.availability()
    if not avail.installed:
        if target.modules:
            for mod in target.modules:
                require(mod, target.extra, f"{mod} (needed by target {target.name!r})")
        raise NotRunnableHere(f"target {target.name!r} cannot convert here: {avail.why}")


Exporter = Callable[[TorchSource, Path], Model]


# The precisions whose settings a target searches when handed a selector (OpenVINO: NNCF's INT8
# settings, int8-weight's run-time activation groups).
SEARCHED_PRECISIONS = ("int8", "int8-weight")


def convert(model_or_source: Any, target: str, out: str | Path, precision: str | None = None, calib: Any = None,
            exporter: Exporter | None = None, selector_for: Callable[[Model], Any] | None = None,
            **options: Any) -> Model:
    """Convert to ``target``'s format at ``out``; returns the new Model (its sidecar written).

    ``calib`` is a Dataset or a data spec (``data:digits-test``, ``calib.npz``) for INT8 variants;
    ``options`` are the target's own config fields (see ``edgeship targets``); ``precision``
    defaults to the target's first (fp32, or int8 for tflite-micro). ``selector_for`` (for targets
    that search their INT8 settings) makes, from the FP32 model converted, the judge that chooses
    (``check.selection.selector_for``)."""
    tgt = get_target(target)
    cfg = tgt.config(precision, **options)  # a bad precision or option fails before anything is loaded
    if selector_for is not None:
        if not getattr(tgt, "selects_int8", False):
            raise BadInput(f"--select chooses a target's own INT8 settings; target {tgt.name!r} has none to "
                           f"search (targets that do: {', '.join(_searching_targets())}); drop --select")
        if cfg.precision not in SEARCHED_PRECISIONS:
            raise BadInput(f"--select chooses INT8 settings; precision {cfg.precision!r} has none to choose: "
                           f"use --precision {' or '.join(SEARCHED_PRECISIONS)}, or drop --select")
    out = check_output_path(out)
    _ensure_installed(tgt)
    subject = resolve(model_or_source)

    def run(model: Model) -> Model:
        extra = {"selector": selector_for(model)} if selector_for is not None else {}
        return tgt.convert(model, out, precision=precision, calib=calib, **options, **extra)

    if is_torch_source(subject) and "torch" not in tgt.formats:
        if exporter is None:
            raise BadInput(f"target {tgt.name!r} converts from ONNX; export the model first "
                           f"(edgeship export {subject.name} -o model.onnx) or use edgeship.convert")
        with scratch_dir(out) as work:
            return run(exporter(subject, work / "model.onnx"))
    if isinstance(subject, Model) and subject.format not in tgt.formats:
        wants = " or ".join("a PyTorch source (zoo:NAME, net.py:factory)" if f == "torch" else f"a .{f} file"
                            for f in tgt.formats)
        raise BadInput(f"target {target!r} converts from {wants}, not from a {subject.format} file "
                       f"({subject.path.name})")
    return run(subject)


def _searching_targets() -> list[str]:
    return sorted(t.name for t in all_targets() if getattr(t, "selects_int8", False))
