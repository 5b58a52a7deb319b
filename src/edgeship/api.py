"""The Python API in one place: every CLI verb is a function here, taking the same typed configs.

    from edgeship import api

    source = api.load_source("zoo:digits-cnn")
    model = api.export(source, "digits.onnx")
    result = api.check(source, [model], data="data:digits-test")

(``export``, ``check`` and ``bench`` are also package names, so they live here rather than as
attributes of ``edgeship`` itself.) Importing this module is light; each function imports its
back-end on first call.
"""

from __future__ import annotations

from typing import Any


def load_source(spec: str, trust_pickle: bool = False, **kwargs: Any) -> Any:
    """A PyTorch source (``zoo:NAME``, ``file.py:factory``, ``.pt2``, HF folder) or an ONNX Model."""
    from edgeship.export.sources import load_source as impl

    return impl(spec, trust_pickle=trust_pickle, **kwargs)


def export(source: Any, out: Any, config: Any = None, **kwargs: Any) -> Any:
    """Export to ONNX with a parity check; see ``edgeship.export.exporter.export``."""
    from edgeship.export.exporter import export as impl

    return impl(source, out, config, **kwargs)


def check(reference: Any, candidates: list[Any], **kwargs: Any) -> Any:
    """Compare candidates with a reference; see ``edgeship.check.comparator.check``."""
    from edgeship.check.comparator import check as impl

    return impl(reference, candidates, **kwargs)


def bench(model: Any, **kwargs: Any) -> dict[str, Any]:
    """Benchmark one model in a fresh process; see ``edgeship.bench.harness.bench``."""
    from edgeship.bench.harness import bench as impl

    return impl(model, **kwargs)


def quantize(model: Any, config: Any, **kwargs: Any) -> Any:
    """Quantize an ONNX model with a typed config; see ``edgeship.compress.quantize``."""
    from edgeship.compress.quantize import quantize as impl

    return impl(model, config, **kwargs)


def convert(model: Any, target: str, out: Any, **kwargs: Any) -> Any:
    """Convert for a deployment target; see ``edgeship.targets.convert``."""
    from edgeship.targets.convert import convert as impl

    return impl(model, target, out, **kwargs)


def optimize(recipe: Any) -> dict[str, Any]:
    """Run an optimize recipe; returns the report dict."""
    from edgeship.pipeline.optimize import optimize as impl

    return impl(recipe)


def load_data(spec: Any, io: Any, **kwargs: Any) -> Any:
    """Load data fitted to a model's IO spec; see ``edgeship.core.data.load_data``."""
    from edgeship.core.data import load_data as impl

    return impl(spec, io, **kwargs)
