"""Structured pruning: whole conv channels, attention heads and MLP neurons go, through torch-pruning's
dependency graph, so coupled layers (a conv, the batch norm and the next conv reading its channels;
q/k/v of one attention head) shrink together and the result is a smaller dense model. Layers whose
channels are the model's outputs (a classifier's logits, an embedding model's residual stream) cannot
shrink without changing what the model returns: they are reported and skipped, as are the layers
the user keeps.
"""

from __future__ import annotations

from typing import Any

from edgeship.compress.prune.attention import attention_modules
from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.prune.importance import IMPORTANCES, taylor_gradients
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource


def output_blocked_layers(module: Any, example_inputs: dict[str, Any]) -> tuple[list[Any], dict[Any, str]]:
    """Layers whose output channels reach a model output (pruning them would change what it returns).

    Walks back from each output through parameter-free ops (activations, pooling, reshapes, sums) to
    the first layers with weights (a classifier's last Linear, an encoder's final LayerNorm); every
    layer in the same channel group as those is blocked too."""
    import torch
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(module, example_inputs=tuple(example_inputs.values()))
    weighted = (torch.nn.modules.conv._ConvNd, torch.nn.Linear, torch.nn.LSTM, torch.nn.LayerNorm,
                torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.Embedding)
    # Output nodes are explicit for structured outputs (tuples, dicts) and sinks otherwise.
    frontier = [n for m, n in dg.module2node.items() if isinstance(m, tp.ops._OutputOp) or not n.outputs]
    seen: set[int] = set()
    ends: list[Any] = []
    while frontier:
        node = frontier.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, weighted):
            if node.module not in ends:
                ends.append(node.module)
            continue
        frontier.extend(node.inputs)
    blocked: list[Any] = []
    why: dict[Any, str] = {}
    for end in ends:
        pruner = dg.get_pruner_of_module(end)
        if pruner is None or pruner.get_out_channels(end) is None:
            continue
        group = dg.get_pruning_group(end, pruner.prune_out_channels, list(range(pruner.get_out_channels(end))))
        for dep, _ in group:
            m = dep.target.module
            if isinstance(m, weighted) and dg.is_out_channel_pruning_fn(dep.handler) and m not in blocked:
                blocked.append(m)
                why[m] = "its output channels are the model's output"
    return blocked, why


def structured(module: Any, src: TorchSource, config: PruneConfig, ds: Dataset | None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Prune ``module`` in place through torch-pruning's dependency graph; returns the layers it skipped
    (and why) and details (pruned layers, attention heads left)."""
    import torch
    import torch_pruning as tp

    names = {m: n for n, m in module.named_modules()}
    by_name = dict(module.named_modules())
    unknown = [k for k in config.keep if k not in by_name]
    if unknown:
        layers = [n for n, m in module.named_modules()
                  if isinstance(m, torch.nn.Linear | torch.nn.modules.conv._ConvNd)]
        raise BadInput(f"keep: no layer named {', '.join(unknown)}; layers: {', '.join(layers[:12])}"
                       f"{' ...' if len(layers) > 12 else ''}")
    blocked, why = output_blocked_layers(module, src.example_inputs)
    for k in config.keep:
        if by_name[k] not in blocked:
            blocked.append(by_name[k])
        why[by_name[k]] = "kept on request (keep)"

    attention = attention_modules(module)
    num_heads = {}
    for m, adapter in attention:
        for layer in adapter.qkv(m):
            num_heads[layer] = adapter.heads(m)
    importance = IMPORTANCES.get(config.importance)(module, src, ds)
    roots = [torch.nn.modules.conv._ConvNd, torch.nn.Linear, torch.nn.LSTM]
    before_out = {m: _out_channels(m) for m in module.modules() if isinstance(m, tuple(roots))}
    pruner = tp.pruner.MetaPruner(
        module, tuple(src.example_inputs.values()), importance=importance, pruning_ratio=config.ratio,
        ignored_layers=blocked, num_heads=num_heads, prune_num_heads=bool(num_heads) and config.heads,
        prune_head_dims=bool(num_heads) and not config.heads, head_pruning_ratio=config.ratio if num_heads else 0.0,
        root_module_types=roots, round_to=config.round_to)
    if config.importance == "taylor":
        taylor_gradients(module, src, ds, config.train.batch_size)
    for group in pruner.step(interactive=True):
        group.prune()
    module.zero_grad(set_to_none=True)
    heads_after = {}
    for m, adapter in attention:
        q = adapter.qkv(m)[0]
        heads = int(pruner.num_heads.get(q, adapter.heads(m)))
        adapter.update(m, heads)
        heads_after[names[m]] = heads

    skipped = []
    pruned_layers = 0
    for m, n_before in before_out.items():
        n_after = _out_channels(m)
        if n_after < n_before:
            pruned_layers += 1
            continue
        reason = why.get(m, "torch-pruning found no prunable channel group for it (coupled to a kept layer)")
        skipped.append({"layer": names.get(m, type(m).__name__), "type": type(m).__name__, "why": reason})
    details: dict[str, Any] = {"pruned_layers": pruned_layers}
    if attention:
        details["attention_heads"] = heads_after
    return skipped, details


def _out_channels(m: Any) -> int:
    for attr in ("out_channels", "out_features", "hidden_size"):
        if hasattr(m, attr):
            return int(getattr(m, attr))
    return 0
