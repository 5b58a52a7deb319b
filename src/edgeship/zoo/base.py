"""The zoo registry: bundled models by name, each a factory of a :class:`TorchSource`.

One module per bundled model (``zoo/minilm.py``, ``zoo/efficientnet_lite0.py``, ``zoo/digits_cnn.py``)
registers its factory here; building happens only when asked (it imports torch and loads weights).
The ``zoo:NAME`` source kind (``edgeship.zoo.source``) reads this registry. A new bundled model is
one module with ``@ZOO.register("name")`` on its factory, named in ``ZOO``'s ``modules``.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from edgeship.core.atomic import atomic_path
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry
from edgeship.sources.torch_source import TorchSource

ZooFactory = Callable[[], TorchSource]
ZOO: Registry[ZooFactory] = Registry("zoo model", modules=[
    "edgeship.zoo.minilm", "edgeship.zoo.efficientnet_lite0", "edgeship.zoo.digits_cnn"])


def zoo_names() -> list[str]:
    return ZOO.names()


def load_zoo(name: str) -> TorchSource:
    """Build a zoo model by name (with or without the ``zoo:`` prefix)."""
    return ZOO.get(name.removeprefix("zoo:"))()


def cache_dir() -> Path:
    """The user cache folder: ``$EDGESHIP_CACHE`` or ``~/.cache/edgeship``."""
    env = os.environ.get("EDGESHIP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeship"


T = TypeVar("T")


def through_cache(path: Path, read: Callable[[Path], T | None], build: Callable[[], T],
                  write: Callable[[T, Path], None]) -> T:
    """``read(path)``, the derived data a file in the cache folder keeps, or, when it is missing,
    unreadable or damaged (``read`` fails or says None), ``build()``, written through a temporary file
    renamed onto ``path``. A cache folder that cannot be written is skipped: built again next time."""
    try:
        value = read(path)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        value = None
    if value is not None:
        return value
    value = build()
    with contextlib.suppress(OSError, BadInput):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write(value, tmp)
    return value


def image_classifier(name: str, module: Any, chw: tuple[int, int, int], *, calib_data: str, eval_data: str,
                     gate: tuple[str, ...], labels: list[str] | None, extra: dict[str, Any]) -> TorchSource:
    """The source of a zoo image classifier: one float ``input`` of N×C×H×W (the batch dynamic) to
    ``logits``, with its calibration and held-out data sets and its gate for lossy variants."""
    import torch

    return TorchSource(name=f"zoo:{name}", module=module, example_inputs={"input": torch.zeros(1, *chw)},
                       output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                       task="classification", calib_data=calib_data, eval_data=eval_data, gate=gate, labels=labels,
                       extra=extra)
