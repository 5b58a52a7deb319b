"""One resolver for every model spec a user can give: :func:`resolve`.

A spec is a string or path (``zoo:NAME``, ``net.py:build``, ``model.onnx``, ``program.pt2``, a Hugging
Face folder, a pickle with ``trust_pickle``, any model file a target runs) or an object already
resolved (a :class:`TorchSource` or a :class:`Model`), returned as it is. The kinds of spec and their
loaders are in :mod:`edgeship.sources.loaders`; nothing else in edgeship tests spec strings by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.sources.loaders import load_source
from edgeship.sources.torch_source import TorchSource

TORCH_KINDS = "zoo:NAME, file.py:factory, model.pt2 or a Hugging Face folder"


def resolve(spec: str | Path | TorchSource | Model | Any, *, trust_pickle: bool = False,
            shapes: dict[str, tuple[int, ...]] | None = None, strict: bool = True,
            task: str | None = None) -> TorchSource | Model:
    """A TorchSource (something to export or compress) or a Model (a file to run or convert).
    ``strict=False`` accepts ONNX files that parse but fail onnx.checker (to be run, not exported);
    ``task`` chooses a Hugging Face folder's task (an Optimum task name; default: its config's)."""
    if isinstance(spec, TorchSource | Model):
        return spec
    return load_source(str(spec), trust_pickle=trust_pickle, shapes=shapes, strict=strict, task=task)


def resolve_torch(spec: str | Path | TorchSource | Any, *, trust_pickle: bool = False,
                  what: str = "this step") -> TorchSource:
    """Like :func:`resolve`, for steps that need the PyTorch model itself (compression)."""
    if isinstance(spec, str | Path) and _file_format(str(spec)) not in (None, "pt2"):
        raise BadInput(f"{str(spec)!r} is a {_file_format(str(spec))} file; {what} works on the PyTorch model "
                       f"({TORCH_KINDS})")
    resolved = resolve(spec, trust_pickle=trust_pickle)
    if not isinstance(resolved, TorchSource):
        raise BadInput(f"{str(resolved.path)!r} is a {resolved.format} file; {what} works on the PyTorch model "
                       f"({TORCH_KINDS})")
    return resolved


def _file_format(spec: str) -> str | None:
    """The model format a spec's name says (``.onnx`` → onnx), or None for other specs."""
    from edgeship.core.artifact import format_of

    try:
        return format_of(Path(spec))
    except BadInput:
        return None
