"""The prune step: ``prune(source, PruneConfig(ratio=0.5), data=..., out="small.onnx") -> CompressResult``.

Structured pruning (``prune/structured.py``) removes whole channels, attention heads and MLP neurons:
a smaller dense model. Unstructured pruning (``prune/unstructured.py``) zeroes weights: the same dense
shapes, which a dense runtime runs no faster. Either may be followed by a fine-tune on ``data``
(``config.train.epochs`` > 0) in which the unpruned model is the teacher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.compress.common import CompressResult
from edgeship.compress.prune.config import Mode, PruneConfig
from edgeship.compress.prune.structured import structured
from edgeship.compress.prune.unstructured import make_permanent, unstructured
from edgeship.compress.steps import register_step
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource

# How each mode prunes a module in place: (module, source, config, data) -> (skipped layers, details).
PRUNERS: dict[Mode, Callable[..., tuple[list[dict[str, Any]], dict[str, Any]]]] = {
    "structured": structured, "unstructured": unstructured}


@register_step(PruneConfig)
def prune(source: TorchSource | str, config: PruneConfig, data: str | Dataset | None = None,
          out: str | Path | None = None, eval_data: str | Dataset | None = None, quiet: bool = False,
          fresh: bool = False) -> CompressResult:
    """Prune ``source`` (a TorchSource or a spec); fine-tune on ``data`` when ``config.train.epochs`` > 0.

    Returns a :class:`~edgeship.compress.common.CompressResult` (``.source`` the pruned module,
    ``.model`` the written file when ``out`` is given, ``.report`` parameters, MACs, sparsity,
    skipped layers, fine-tune and held-out accuracy)."""
    from edgeship.compress import common, evaluate, output, train, training_data

    require_torch_pruning()
    out_path = output.check_output(out)
    src = common.resolve_source(source)
    if config.train.epochs and data is None:
        raise BadInput("--finetune-epochs needs training data: give --data (e.g. data:digits-train or an .npz "
                       "with labels)")
    ds = training_data.load_training_data(data, src) if data is not None else None
    original = common.copy_module(src.module).eval()
    module = common.copy_module(src.module).eval()
    train.seed_everything(config.train.seed)
    skipped, details = PRUNERS[config.mode](module, src, config, ds)

    fit_report = None
    if config.train.epochs:
        settings = dataclasses.replace(config.train, alpha=train.resolve_alpha(config.train.alpha, src.task, ds))
        run_key = f"prune:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
        fit_report = train.fit(module, original, ds, list(src.example_inputs), src.task, settings,
                               checkpoint_dir=output.checkpoint_dir(out_path, fresh), run_key=run_key,
                               description=f"fine-tune ({src.name})", quiet=quiet).to_dict()
    if config.mode == "unstructured":
        make_permanent(module)

    pruned = common.clone_source(src, module, f"+prune{int(config.ratio * 100)}")
    report: dict[str, Any] = {
        "stage": "prune", "config": config.to_dict(), "source": src.name,
        **common.size_change(original, module, src.example_inputs, ("before", "after")),
        "sparsity": common.weight_sparsity(module),
        "skipped": skipped, **details,
        "finetune": fit_report,
    }
    ev = evaluate.eval_dataset(src, eval_data)
    if ev is not None:
        report["eval"] = {"data": ev.name, **evaluate.evaluate_torch(pruned, src, ev)}
    model = None
    if out_path is not None:
        facts = {"compression": {k: report[k] for k in ("params", "macs", "sparsity")}}
        model = output.write_output(pruned, out_path, "prune", config, facts, src.name)
    return CompressResult(pruned, model, report)


def require_torch_pruning() -> Any:
    from edgeship.core.registry import require

    return require("torch_pruning", "compress", "torch-pruning")
