"""edgeship: compress, export, convert, check, benchmark and ship neural networks for edge devices.

``import edgeship`` is light: the public functions below import their heavy back-ends on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute", resolved lazily
_LAZY = {
    "Model": "edgeship.core.artifact:Model",
    "IOSpec": "edgeship.core.artifact:IOSpec",
    "TensorSpec": "edgeship.core.artifact:TensorSpec",
    "Dataset": "edgeship.core.data:Dataset",
    "load_data": "edgeship.core.data:load_data",
    "load_source": "edgeship.export.sources:load_source",
    "export": "edgeship.export.exporter:export",
    "ExportConfig": "edgeship.export.exporter:ExportConfig",
    "check": "edgeship.check.comparator:check",
    "bench": "edgeship.bench.harness:bench",
    "optimize": "edgeship.pipeline.optimize:optimize",
    "quantize": "edgeship.compress.quantize:quantize",
    "convert": "edgeship.targets.convert:convert",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'edgeship' has no attribute {name!r}")
    mod, _, attr = target.partition(":")
    value = getattr(importlib.import_module(mod), attr)
    globals()[name] = value
    return value
