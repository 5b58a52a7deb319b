"""Compression steps by config kind: ``compress(source, config, ...)`` runs prune, distill or QAT.

Each step is ``fn(source, config, data=None, out=None, eval_data=None, quiet=False, fresh=False)``
returning a :class:`~edgeship.compress.common.CompressResult`; it registers itself beside its code
with ``@register_step(kind)``. Recipes and ``edgeship optimize`` dispatch here on ``config.kind``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.core.config import Config
from edgeship.core.registry import Registry

Step = Callable[..., Any]
STEPS: Registry[Step] = Registry("compression step", modules=["edgeship.compress.prune", "edgeship.compress.distill",
                                                               "edgeship.compress.qat"])


def register_step(kind: str) -> Callable[[Step], Step]:
    return STEPS.register(kind)


def get_step(kind: str) -> Step:
    return STEPS.get(kind)


def compress(source: Any, config: Config, **options: Any) -> Any:
    """Run the step registered for ``config.kind`` (PruneConfig → prune, DistillConfig → distill, ...)."""
    return get_step(config.kind)(source, config, **options)
