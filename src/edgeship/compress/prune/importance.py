"""How structured pruning ranks channels, registered by name (``PruneConfig.importance``).

A factory gets (module, source, data) and returns a torch-pruning Importance; it may need data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry
from edgeship.sources.torch_source import TorchSource

ImportanceFactory = Callable[[Any, TorchSource, Dataset | None], Any]
IMPORTANCES: Registry[ImportanceFactory] = Registry("pruning importance")


@IMPORTANCES.register("magnitude")
def _magnitude(module: Any, source: TorchSource, data: Dataset | None) -> Any:
    import torch_pruning as tp

    return tp.importance.GroupMagnitudeImportance(p=2)


@IMPORTANCES.register("taylor")
def _taylor(module: Any, source: TorchSource, data: Dataset | None) -> Any:
    """First-order Taylor: |w · dL/dw| with the task loss (cross-entropy on labels) on a few batches."""
    import torch_pruning as tp

    if data is None or data.labels is None or source.task != "classification":
        raise BadInput("taylor importance needs labelled data of a classifier (--data with labels); "
                       "use --importance magnitude otherwise")
    return tp.importance.GroupTaylorImportance()


@IMPORTANCES.register("bn-scale")
def _bn_scale(module: Any, source: TorchSource, data: Dataset | None) -> Any:
    import torch
    import torch_pruning as tp

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        raise BadInput("bn-scale importance ranks channels by BatchNorm scales but the model has no BatchNorm; "
                       "use --importance magnitude")
    return tp.importance.BNScaleImportance()


def taylor_gradients(module: Any, source: TorchSource, ds: Dataset, batch_size: int) -> None:
    """Accumulate gradients of the task loss over a few batches (what Taylor importance reads)."""
    import torch
    import torch.nn.functional as F

    from edgeship.compress import train

    module.zero_grad(set_to_none=True)
    names = list(source.example_inputs)
    for i, (feeds, labels) in enumerate(train.batches(ds, batch_size, 0, 0)):
        if i >= 8:
            break
        out = train.first_output(module, feeds, names)
        F.cross_entropy(out, torch.from_numpy(labels.astype("int64"))).backward()
