"""Pruning: structured (whole channels, attention heads, MLP neurons — a smaller dense model) and
unstructured (zeroed weights — the same dense shapes, which a dense runtime runs no faster).

Structured pruning goes through torch-pruning's dependency graph, so coupled layers (a conv and
the batch norm and the next conv reading its channels; q/k/v of one attention head) shrink
together. Layers whose channels are the model's outputs (a classifier's logits, an embedding
model's residual stream) cannot be pruned without changing what the model returns: they are
reported and skipped, as are layers the user keeps with ``keep``.

Python API: ``prune(source, PruneConfig(ratio=0.5), data=..., out="small.onnx") -> CompressResult``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from edgeship.compress.steps import register_step
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry

Importance = Literal["magnitude", "taylor", "bn-scale"]
Mode = Literal["structured", "unstructured"]


@dataclasses.dataclass(frozen=True)
class PruneConfig(Config):
    kind: ClassVar[str] = "prune"

    ratio: float = 0.5  # fraction of channels / heads / neurons (structured) or weights (unstructured) removed
    importance: Importance = "magnitude"
    mode: Mode = "structured"
    heads: bool = True  # structured attention: remove whole heads (False: shrink every head's width)
    keep: tuple[str, ...] = ()  # module names never pruned (their outputs keep their size)
    round_to: int | None = None  # structured: keep channel counts multiples of this (SIMD-friendly widths)
    finetune_epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 32
    temperature: float = 4.0
    alpha: float | None = None  # teacher (unpruned model) weight in the fine-tune; None: auto
    max_steps: int | None = None
    schedule: str = "constant"  # fine-tune learning rate after warm-up: constant, linear or cosine decay
    warmup: float = 0.0  # fraction of the fine-tune steps spent warming up
    seed: int = 0

    def validate(self) -> None:
        from edgeship.compress.train import check_schedule

        check_schedule(self.schedule, self.warmup)
        if not 0.0 < self.ratio < 1.0:
            raise BadInput(f"prune ratio {self.ratio} is out of range; give a fraction strictly between 0 and 1, "
                           "e.g. --ratio 0.5 removes half")
        if self.importance not in ("magnitude", "taylor", "bn-scale"):
            raise BadInput(f"importance {self.importance!r}; choose magnitude, taylor or bn-scale")
        if self.mode not in ("structured", "unstructured"):
            raise BadInput(f"mode {self.mode!r}; choose structured or unstructured")
        if self.mode == "unstructured" and self.importance != "magnitude":
            raise BadInput(f"unstructured pruning ranks single weights by magnitude; drop --importance "
                           f"{self.importance} or use --structured")
        if self.round_to is not None and (self.round_to < 1 or self.mode != "structured"):
            raise BadInput(f"round_to {self.round_to}: give a positive multiple for structured pruning, e.g. 8")
        if self.finetune_epochs < 0:
            raise BadInput(f"finetune_epochs {self.finetune_epochs} must be 0 or more")
        if self.lr <= 0 or self.batch_size < 1:
            raise BadInput("lr must be positive and batch_size at least 1")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise BadInput(f"alpha {self.alpha} must be between 0 and 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise BadInput(f"max_steps {self.max_steps} must be at least 1")


# -- importance criteria (registered by name) -------------------------------------------------------
# A factory gets (model, source, data) and returns a torch-pruning Importance; it may need data.
IMPORTANCES: Registry[Callable[..., Any]] = Registry("pruning importance")


@IMPORTANCES.register("magnitude")
def _magnitude(module: Any, source: Any, data: Any) -> Any:
    import torch_pruning as tp

    return tp.importance.GroupMagnitudeImportance(p=2)


@IMPORTANCES.register("taylor")
def _taylor(module: Any, source: Any, data: Any) -> Any:
    """First-order Taylor: |w · dL/dw| with the task loss (cross-entropy on labels) on a few batches."""
    import torch_pruning as tp

    if data is None or data.labels is None or source.task != "classification":
        raise BadInput("taylor importance needs labelled data of a classifier (--data with labels); "
                       "use --importance magnitude otherwise")
    return tp.importance.GroupTaylorImportance()


@IMPORTANCES.register("bn-scale")
def _bn_scale(module: Any, source: Any, data: Any) -> Any:
    import torch
    import torch_pruning as tp

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        raise BadInput("bn-scale importance ranks channels by BatchNorm scales but the model has no BatchNorm; "
                       "use --importance magnitude")
    return tp.importance.BNScaleImportance()


# -- attention adapters -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AttentionAdapter:
    """How to find a kind of attention module's q/k/v layers and head count, and fix it after pruning."""

    matches: Callable[[Any], bool]
    qkv: Callable[[Any], list[Any]]
    heads: Callable[[Any], int]
    update: Callable[[Any, int], None]  # (module, new head count)


ATTENTION: Registry[AttentionAdapter] = Registry("attention adapter")


def _hf_update(m: Any, heads: int) -> None:
    m.num_attention_heads = heads
    m.attention_head_size = m.query.out_features // heads
    m.all_head_size = m.query.out_features


ATTENTION.add("hf-bert-self-attention", AttentionAdapter(
    matches=lambda m: all(hasattr(m, a) for a in ("query", "key", "value", "num_attention_heads")),
    qkv=lambda m: [m.query, m.key, m.value],
    heads=lambda m: int(m.num_attention_heads),
    update=_hf_update,
))


def _attention_modules(module: Any) -> list[tuple[Any, AttentionAdapter]]:
    found = []
    for m in module.modules():
        for _, adapter in ATTENTION.items():
            if adapter.matches(m):
                found.append((m, adapter))
                break
    return found


# -- the step ---------------------------------------------------------------------------------------
@register_step("prune")
def prune(source: Any, config: PruneConfig, data: Any = None, out: str | Path | None = None,
          eval_data: Any = None, quiet: bool = False, fresh: bool = False) -> Any:
    """Prune ``source`` (a TorchSource or a spec); fine-tune on ``data`` when ``finetune_epochs`` > 0.

    Returns a :class:`~edgeship.compress.common.CompressResult` (``.source`` the pruned module,
    ``.model`` the written file when ``out`` is given, ``.report`` parameters, MACs, sparsity,
    skipped layers, fine-tune and held-out accuracy)."""
    from edgeship.compress import common, train

    require_torch_pruning()
    out_path = common.check_output(out)
    src = common.resolve_source(source)
    if config.finetune_epochs and data is None:
        raise BadInput("--finetune-epochs needs training data: give --data (e.g. data:digits-train or an .npz "
                       "with labels)")
    ds = common.load_training_data(data, src) if data is not None else None
    original = common.copy_module(src.module).eval()
    module = common.copy_module(src.module).eval()
    before = {"params": common.count_params(module), "macs": common.count_macs(module, src.example_inputs)}
    train.seed_everything(config.seed)

    if config.mode == "structured":
        skipped, details = _structured(module, src, config, ds)
    else:
        skipped, details = _unstructured(module, src, config)

    fit_report = None
    if config.finetune_epochs:
        settings = train.TrainSettings(
            epochs=config.finetune_epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
            max_steps=config.max_steps, temperature=config.temperature,
            alpha=train.resolve_alpha(config.alpha, src.task, ds), schedule=config.schedule, warmup=config.warmup,
            bucket=True)
        ckpt = None if out_path is None else common.default_checkpoint_dir(out_path, "prune")
        if fresh and ckpt is not None and ckpt.exists():
            _remove_tree(ckpt)
        run_key = f"prune:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
        fit_report = train.fit(module, original, ds, list(src.example_inputs), src.task, settings,
                               checkpoint_dir=ckpt, run_key=run_key, description=f"fine-tune ({src.name})",
                               quiet=quiet).to_dict()
    if config.mode == "unstructured":
        _make_permanent(module)

    pruned = common.clone_source(src, module, f"+prune{int(config.ratio * 100)}")
    after = {"params": common.count_params(module), "macs": common.count_macs(module, src.example_inputs)}
    report: dict[str, Any] = {
        "stage": "prune", "config": config.to_dict(), "source": src.name,
        "params": {"before": before["params"], "after": after["params"],
                   "ratio": round(after["params"] / before["params"], 4)},
        "macs": {"before": before["macs"], "after": after["macs"],
                 "ratio": round(after["macs"] / before["macs"], 4) if before["macs"] and after["macs"] else None},
        "sparsity": common.weight_sparsity(module),
        "skipped": skipped, **details,
        "finetune": fit_report,
    }
    ev = common.eval_dataset(src, eval_data)
    if ev is not None:
        report["eval"] = {"data": ev.name, **common.evaluate_torch(pruned, src, ev)}
    model = None
    if out_path is not None:
        model = common.write_output(pruned, out_path, "prune", config, {"compression": _facts(report)}, src.name)
    return common.CompressResult(pruned, model, report)


def _facts(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("params", "macs", "sparsity") if k in report}


def require_torch_pruning() -> Any:
    from edgeship.core.registry import require

    return require("torch_pruning", "compress", "torch-pruning")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


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


def _structured(module: Any, src: Any, config: PruneConfig, ds: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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

    attention = _attention_modules(module)
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
        _taylor_gradients(module, src, ds, config.batch_size)
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


def _taylor_gradients(module: Any, src: Any, ds: Any, batch_size: int) -> None:
    """Accumulate gradients of the task loss over a few batches (what Taylor importance reads)."""
    import torch
    import torch.nn.functional as F

    from edgeship.compress import train

    module.zero_grad(set_to_none=True)
    names = list(src.example_inputs)
    for i, (feeds, labels) in enumerate(train.batches(ds, batch_size, 0, 0)):
        if i >= 8:
            break
        out = train._outputs(module, feeds, names)
        F.cross_entropy(out, torch.from_numpy(labels.astype("int64"))).backward()


def _unstructured(module: Any, src: Any, config: PruneConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Global magnitude pruning of Conv/Linear weights with masks (kept during the fine-tune)."""
    import torch
    from torch.nn.utils import prune as tprune

    by_name = dict(module.named_modules())
    unknown = [k for k in config.keep if k not in by_name]
    if unknown:
        raise BadInput(f"keep: no layer named {', '.join(unknown)}; see the model's module names")
    targets, skipped = [], []
    for name, m in module.named_modules():
        if not isinstance(m, torch.nn.modules.conv._ConvNd | torch.nn.Linear):
            continue
        if name in config.keep:
            skipped.append({"layer": name, "type": type(m).__name__, "why": "kept on request (keep)"})
            continue
        targets.append((m, "weight"))
    if not targets:
        raise BadInput("no Conv or Linear weights left to prune; remove some --keep names")
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=config.ratio)
    return skipped, {"pruned_layers": len(targets)}


def _make_permanent(module: Any) -> None:
    from torch.nn.utils import prune as tprune

    for m in module.modules():
        if tprune.is_pruned(m) and hasattr(m, "weight_orig"):
            tprune.remove(m, "weight")
