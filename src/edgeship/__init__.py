"""edgeship: compress, export, convert, check, benchmark and ship neural networks for edge devices.

``import edgeship`` is light: the public functions below import their heavy back-ends on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute", resolved lazily. The verbs whose names are also package names
# (export, check, bench) live in ``edgeship.api`` with all the others.
_LAZY = {
    "api": "edgeship.api:",
    "Model": "edgeship.core.artifact:Model",
    "IOSpec": "edgeship.core.artifact:IOSpec",
    "TensorSpec": "edgeship.core.artifact:TensorSpec",
    "Dataset": "edgeship.core.data:Dataset",
    "load_data": "edgeship.core.data:load_data",
    "load_source": "edgeship.sources.resolve:resolve",
    "ExportConfig": "edgeship.export.config:ExportConfig",
    "optimize": "edgeship.pipeline.optimize:optimize",
    "quantize": "edgeship.compress.quantize.api:quantize",
    "convert": "edgeship.api:convert",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'edgeship' has no attribute {name!r}")
    mod, _, attr = target.partition(":")
    module = importlib.import_module(mod)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value
