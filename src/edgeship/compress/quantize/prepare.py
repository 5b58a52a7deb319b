"""Shared preparation of a model before quantization, cached per quantize() call: stable node
names, optional transformer fusion, ORT pre-processing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.compress.quantize import graph
from edgeship.core.onnx_graph import is_transformer


def prepared(src: Path, ctx: Any, fuse: bool, pre_process: bool = True) -> tuple[Path, dict[str, Any]]:
    """A copy of ``src`` in ctx.workdir ready to quantize, plus facts about what was done.

    ``fuse``: apply ORT's transformer fusion when the graph is a BERT-like encoder.
    """
    key = ("prepared", str(src), fuse, pre_process)
    if key in ctx.cache:
        return ctx.cache[key]
    import onnx

    graph.quiet_ort_logs()
    model = onnx.load(str(src))
    graph.ensure_names(model)
    named = ctx.tmp(f"named-{len(ctx.cache)}.onnx")
    onnx.save(model, str(named))
    facts: dict[str, Any] = {}
    current = named
    if fuse and is_transformer(model):
        fused = ctx.tmp(f"fused-{len(ctx.cache)}.onnx")
        # the fused graph must compute what the input did: checked on calibration samples, or
        # without them on synthetic tokens (the fuser only knows patterns, not this model)
        feeds = ctx.calib.samples[:4] if ctx.calib is not None else synthetic_feeds(model)
        info = graph.optimize_transformer(current, fused, feeds)
        facts["transformer_fusion"] = info
        if info.get("fused"):
            current = fused
            model = onnx.load(str(current))
            graph.ensure_names(model)
            onnx.save(model, str(current))
            ctx.say(f"fused transformer blocks: {info.get('fused_ops')}")
    elif pre_process:
        pp = graph.pre_process(current, ctx.tmp(f"pre-{len(ctx.cache)}.onnx"))
        if pp != current:
            model = onnx.load(str(pp))
            graph.ensure_names(model)
            onnx.save(model, str(pp))
        current = pp
    ctx.cache[key] = (current, facts)
    return current, facts


def synthetic_feeds(model: Any, n: int = 4, length: int = 16) -> list[dict[str, Any]]:
    """Random feeds from the graph's inputs (token ids, masks of ones), symbolic dims set to 1 × ``length``."""
    from edgeship.core.data import load_data
    from edgeship.core.onnx_file import io_spec

    io = io_spec(model)
    shapes = {t.name: tuple(d if isinstance(d, int) and d > 0 else (1 if i == 0 else length)
                            for i, d in enumerate(t.shape)) for t in io.inputs}
    return load_data("data:synthetic", io, limit=n, shapes=shapes).samples


def wants_fusion(optimize: str, dynamic: bool) -> bool:
    """``auto`` fuses for dynamic INT8 only: ORT's integer Attention/EmbedLayerNormalization kernels
    exist there, while QDQ (static) graphs are fused by the session itself when it loads them."""
    if optimize == "none":
        return False
    if optimize == "bert":
        return True
    return dynamic


def resolve_nodes(path: Path, names: tuple[str, ...] | list[str], what: str = "nodes_to_exclude") -> list[str]:
    """Map node names of the user's graph onto the prepared graph.

    Pre-processing fuses nodes and names the result after the first one (``fc1`` becomes
    ``fc1/MatMulAddFusion``), so a name also matches the nodes named ``NAME/...``. A name that
    matches nothing is an error naming a few real nodes, not a silently ignored exclusion.
    """
    if not names:
        return []
    import onnx

    present = [n.name for n in onnx.load(str(path), load_external_data=False).graph.node]
    have = set(present)
    out: list[str] = []
    for name in names:
        matches = [name] if name in have else [p for p in present if p.startswith(name + "/")]
        if not matches:
            from edgeship.core.errors import BadInput

            sample = ", ".join(present[:8])
            raise BadInput(f"{what}: no node named {name!r} in the model (nodes: {sample}, ...); "
                           "use names from `edgeship inspect` or a mixed result's nodes_kept_fp32")
        out.extend(m for m in matches if m not in out)
    return out
