"""Compression steps by config type: ``compress(source, config, ...)`` runs prune, distill or QAT.

Each step is ``fn(source, config, data=None, out=None, eval_data=None, quiet=False, fresh=False)``
returning a :class:`~edgeship.compress.common.CompressResult`; it registers itself beside its code
with ``@register_step(PruneConfig)``. Recipes and ``edgeship optimize`` dispatch here on the type of
the config, as torchao's ``quantize_`` does (``Config.from_dict`` picks the class from ``kind``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.compress.common import CompressResult
from edgeship.core.config import Config
from edgeship.core.registry import TypeRegistry
from edgeship.sources.torch_source import TorchSource

Step = Callable[..., Any]
STEPS: TypeRegistry[Step] = TypeRegistry("compression step", modules=[
    "edgeship.compress.prune.step", "edgeship.compress.distill.step", "edgeship.compress.qat.step"])


def register_step(config_type: type[Config]) -> Callable[[Step], Step]:
    """Decorator: the function runs the compression step for configs of ``config_type``."""
    return STEPS.register(config_type)


def get_step(config: Config | type[Config]) -> Step:
    return STEPS.get(config)


def compress(source: TorchSource | str, config: Config, **options: Any) -> CompressResult:
    """Run the step registered for ``type(config)`` (PruneConfig → prune, DistillConfig → distill, ...)."""
    return get_step(config)(source, config, **options)
