"""BatchNorm folding before QAT: a BatchNorm that follows a convolution is folded into it (inference
semantics), so the quantized weights are the ones the runtime uses."""

from __future__ import annotations

from typing import Any


def fold_batchnorm(module: Any) -> Any:
    """Fold eval-mode BatchNorm into the convolution that feeds it (returns a new module)."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = module.eval()
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception:  # not traceable (data-dependent control flow): fold nothing
        return module
    mods = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(mods.get(node.target), torch.nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0] if node.args else None
        if getattr(prev, "op", None) != "call_module" or len(prev.users) != 1:
            continue
        conv = mods.get(prev.target)
        if not isinstance(conv, torch.nn.Conv1d | torch.nn.Conv2d):
            continue
        fused = fuse_conv_bn_eval(conv, mods[node.target])
        _set_submodule(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        folded += 1
    if not folded:
        return module
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()  # the folded BatchNorms
    return gm


def _set_submodule(root: Any, target: str, new: Any) -> None:
    parent_name, _, attr = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
