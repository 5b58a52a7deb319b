"""ONNX graph helpers for the quantizers: loading, transformer fusion, pre-processing, smoothing,
the listing of quantizable nodes, and the sanity check of a produced model (no NaN, no zero scale)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import BadInput, InternalError

# Node types whose weight (an initializer) a quantizer turns into integers.
WEIGHTED_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose", "Attention", "Gather", "EmbedLayerNormalization")


def quiet_ort_logs() -> None:
    """ORT's quantization tools log warnings/INFO for every node; keep the user's terminal clean."""
    for name in ("root", "onnxruntime.quantization", "onnxruntime.quantization.matmul_nbits_quantizer",
                 "onnxruntime.transformers", "fusion_base", "onnx_model"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_checked(path: Path, what: str | None = None) -> Any:
    from edgeship.core import onnx_file

    try:
        return onnx_file.load(path, load_weights=True, check=False)
    except BadInput as exc:
        if what:
            raise InternalError(f"{what} cannot be read back: {exc}") from None
        raise


def opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def canonicalize_for_fusion(model: Any) -> list[str]:
    """Rewrite, in place, three shapes of exported graphs that ORT's transformer fuser does not match,
    into equivalent ones it does; returns what was rewritten.

    - ``Unsqueeze(mask, axes=[1, 2])`` (graph simplifiers merge the exporter's two Unsqueezes):
      the attention-mask pattern expects one axis per Unsqueeze, so it becomes a chain.
    - ``ReduceL2(x, axes)`` with axes as an input (opset 18): ORT's symbolic shape inference cannot
      infer it, and without shapes the fuser gives up on every SkipLayerNormalization. It becomes
      ``Sqrt(ReduceSum(x * x, axes))``, the same arithmetic.
    - ``Shape(x, start=i, end=i+1)`` (opset 15 slicing form) becomes ``Unsqueeze(Gather(Shape(x), i), 0)``,
      the form the embedding pattern expects; and a Shape of a graph input reads the first graph
      input declared with the same dims (``token_type_ids`` → ``input_ids``: one dims, one value).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    done: list[str] = []
    nodes: list[Any] = []

    def dims(value_info: Any) -> tuple[Any, ...]:
        return tuple(d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim)

    inputs = [i for i in graph.input if i.name not in inits]
    same_dims = {}
    for i in inputs:
        first = next(j for j in inputs if dims(j) == dims(i))
        if first.name != i.name and all(isinstance(d, str) or d for d in dims(i)):
            same_dims[i.name] = first.name
    for n in graph.node:
        if n.op_type == "Shape":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            source = same_dims.get(n.input[0], n.input[0])
            start, end = attrs.get("start"), attrs.get("end")
            if start is not None and end is not None and start >= 0 and end == start + 1:
                full, index, picked = f"{n.name}_full", f"{n.name}_index", f"{n.name}_dim"
                zero = f"{n.name}_axis0"
                graph.initializer.append(numpy_helper.from_array(np.array(start, dtype=np.int64), index))
                graph.initializer.append(numpy_helper.from_array(np.array([0], dtype=np.int64), zero))
                nodes.append(helper.make_node("Shape", [source], [full], name=full))
                nodes.append(helper.make_node("Gather", [full, index], [picked], name=picked, axis=0))
                nodes.append(helper.make_node("Unsqueeze", [picked, zero], list(n.output), name=n.name))
                done.append(f"Shape {n.name} as Unsqueeze(Gather(Shape))")
                continue
            if source != n.input[0]:
                n.input[0] = source
                done.append(f"Shape {n.name} reads {source}")
        if n.op_type == "Unsqueeze" and len(n.input) == 2 and n.input[1] in inits:
            axes = sorted(int(a) for a in numpy_helper.to_array(inits[n.input[1]]).reshape(-1))
            if len(axes) > 1 and all(a >= 0 for a in axes):
                current = n.input[0]
                for k, axis in enumerate(axes):
                    axis_name = f"{n.name}_axis{k}"
                    graph.initializer.append(numpy_helper.from_array(np.array([axis], dtype=np.int64), axis_name))
                    out = n.output[0] if k == len(axes) - 1 else f"{n.name}_out{k}"
                    nodes.append(helper.make_node("Unsqueeze", [current, axis_name], [out], name=f"{n.name}_{k}"))
                    current = out
                done.append(f"split Unsqueeze {n.name}")
                continue
        if n.op_type == "ReduceL2" and opset(model) >= 18:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            square, total = f"{n.name}_square", f"{n.name}_sum_squares"
            nodes.append(helper.make_node("Mul", [n.input[0], n.input[0]], [square], name=square))
            nodes.append(helper.make_node("ReduceSum", [square, *n.input[1:]], [total], name=total, **attrs))
            nodes.append(helper.make_node("Sqrt", [total], list(n.output), name=n.name))
            done.append(f"ReduceL2 {n.name} as Sqrt(ReduceSum(x*x))")
            continue
        nodes.append(n)
    if done:
        del graph.node[:]
        graph.node.extend(nodes)
    return done


def optimize_transformer(src: Path, dst: Path, check_feeds: list[dict[str, np.ndarray]] | None) -> dict[str, Any]:
    """Fuse attention, LayerNorm, GELU and embeddings with ORT's transformer optimizer (model_type bert).

    The fused ops (Attention, EmbedLayerNormalization) have integer versions that ORT runs fast on
    VNNI CPUs and that quantize the embedding table. The fused graph is checked against the input
    on ``check_feeds``; if fusion changed the numbers (or found nothing) the input is used as is.
    """
    import contextlib
    import io

    import onnx
    from onnxruntime.transformers import optimizer

    quiet_ort_logs()
    model = onnx.load(str(src))
    rewritten = canonicalize_for_fusion(model)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the optimizer prints its shape-inference failures
            opt = optimizer.optimize_model(model, model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    except Exception as exc:  # the optimizer raises assorted errors on graphs it does not understand
        return {"fused": False, "why": f"optimizer failed: {type(exc).__name__}"}
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if not stats.get("Attention") and not stats.get("SkipLayerNormalization"):
        return {"fused": False, "why": "no transformer blocks recognised"}
    opt.save_model_to_file(str(dst))  # also declares the com.microsoft opset the fused ops need
    if check_feeds:
        from edgeship.check.judge import judge

        # the fused graph must compute the same function: the one FP32 tolerance (check/tolerances.yaml)
        parity = judge(run_outputs(src, check_feeds[:4]), run_outputs(dst, check_feeds[:4]), precision="fp32",
                       name="the fused graph")
        worst = parity.summary.get("rel_err_max", float("inf"))
        if not parity.passed:
            return {"fused": False, "why": f"fusion changed outputs ({parity.why})"}
        return {"fused": True, "fused_ops": stats, "rewritten_for_fusion": rewritten,
                "parity": {"samples": len(check_feeds[:4]), "rel_err_max": float(f"{worst:.3g}")}}
    return {"fused": True, "fused_ops": stats, "rewritten_for_fusion": rewritten, "parity": None}


def pre_process(src: Path, dst: Path) -> Path:
    """ORT's quant_pre_process (graph optimisation + ONNX shape inference) into ``dst``.

    Symbolic shape inference fails on exported transformers, so it is skipped. The tool writes a
    helper file into the current directory, so it runs with the working folder set to dst's folder.
    """
    import contextlib
    import os

    from onnxruntime.quantization.shape_inference import quant_pre_process

    quiet_ort_logs()
    cwd = os.getcwd()
    try:
        os.chdir(dst.parent)
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception:
        # Pre-processing is an optimisation; a graph it cannot handle is quantized as it is.
        with contextlib.suppress(OSError):
            dst.unlink()
        return src
    finally:
        os.chdir(cwd)
    return dst


def run_outputs(path: Path | bytes | Any, feeds: list[dict[str, np.ndarray]], outputs: list[str] | None = None,
                optimize: bool = True, expose: list[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Run a model (a path, an ``onnx.ModelProto`` or its bytes) in ONNX Runtime with 2 threads, like
    the targets, on each feed; outputs by name. ``expose`` adds intermediate tensors as outputs;
    ``optimize=False`` runs the graph as written (no fusions), so intermediate tensors keep their names.
    A graph ORT refuses is an internal error: the quantizers made it."""
    from edgeship.targets.onnxruntime.runner import OrtRunner

    with OrtRunner(path, threads=2, graph_optimization="all" if optimize else "disable", expose=expose,
                   outputs=outputs, load_error=InternalError) as runner:
        return [runner.infer(f) for f in feeds]


def weighted_nodes(model: Any, op_types: tuple[str, ...] = WEIGHTED_OPS) -> list[Any]:
    """Nodes whose second input (the weight) is an initializer: the ones a quantizer changes."""
    inits = {i.name for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type not in op_types:
            continue
        # where the weight sits: data of a Gather, word table of EmbedLayerNormalization, B otherwise
        weight_at = {"Gather": 0, "EmbedLayerNormalization": 2}.get(n.op_type, 1)
        if len(n.input) > weight_at and n.input[weight_at] in inits:
            out.append(n)
    return out


# Dynamic INT8 turns a Conv into ConvInteger, which ONNX Runtime runs without its fast integer
# kernels: measured 0.06x ORT FP32 on EfficientNet-Lite0 (2 threads, Intel Xeon with AMX).
CONV_HEAVY_SHARE = 0.5


def conv_heavy(model: Any) -> str:
    """Why dynamic INT8 does not pay on this graph (most of its weights are in Conv layers), or ""."""
    nodes = weighted_nodes(model)
    conv = [n for n in nodes if n.op_type == "Conv"]
    total = sum(node_weight_bytes(model, n) for n in nodes)
    share = sum(node_weight_bytes(model, n) for n in conv) / total if total else 0.0
    if not conv or share < CONV_HEAVY_SHARE:
        return ""
    return (f"{len(conv)} Conv layers hold {share:.0%} of the weights: dynamic INT8 makes them ConvInteger, which "
            "ONNX Runtime runs without fast integer kernels (0.06x FP32 measured on EfficientNet-Lite0); "
            "int8-static quantizes them to QLinearConv")


def node_weight_bytes(model: Any, node: Any) -> int:
    """FP32 bytes of the node's initializer inputs (what keeping it in FP32 costs in size)."""
    inits = {i.name: i for i in model.graph.initializer}
    total = 0
    for name in node.input:
        t = inits.get(name)
        if t is not None and t.data_type == 1:
            total += 4 * int(np.prod(t.dims)) if t.dims else 4
    return total


def ensure_names(model: Any) -> None:
    """Give unnamed nodes stable names: exclusion lists and reports refer to nodes by name."""
    seen: set[str] = set()
    for i, n in enumerate(model.graph.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)


def assert_sane(model: Any, method: str) -> None:
    """No NaN/Inf in float initializers, no zero or negative activation scale, no all-zero weight
    scales. (A zero scale for one block is legitimate: that block's weights are all zero, such as an
    embedding's padding row; negative blockwise scales are how ORT's symmetric 4-bit format works.)"""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    activation_scales: set[str] = set()
    weight_scales: set[str] = set()
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 1:
            activation_scales.add(n.input[1])
        elif n.op_type == "DequantizeLinear" and len(n.input) > 1:
            (weight_scales if n.input[0] in inits else activation_scales).add(n.input[1])
        elif n.op_type in ("MatMulNBits", "GatherBlockQuantized") and len(n.input) > 2:
            weight_scales.add(n.input[2])
    for name, t in inits.items():
        if t.data_type not in (1, 10, 11, 16):  # float, float16, double, bfloat16
            continue
        arr = numpy_helper.to_array(t).astype(np.float32)
        if not np.isfinite(arr).all():
            raise BadInput(f"{method}: quantization produced NaN/Inf in {name!r} (the calibration data or the model "
                           "holds extreme values); check the data or exclude that node")
        if name in activation_scales and arr.size and (arr <= 0).any():
            raise BadInput(f"{method}: quantization produced a zero activation scale in {name!r} (a tensor never "
                           "varied on the calibration data); calibrate with varied, representative data")
        # (blockwise symmetric 4-bit scales may be negative by construction: ORT maps the largest
        # magnitude onto -8)
        if name in weight_scales and arr.size and not arr.any():
            raise BadInput(f"{method}: quantization produced invalid weight scales in {name!r}; "
                           "exclude that node (nodes_to_exclude)")


# -- activation statistics and smoothing -----------------------------------------------------------------
def activation_absmax(path: Path, tensors: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |x| of intermediate tensors over the feeds (padding rows included);
    a tensor that is a graph input is read from the feeds themselves."""
    import onnx

    inputs = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    inner = [t for t in tensors if t not in inputs]
    amax: dict[str, np.ndarray] = {}
    runs = run_outputs(path, feeds, outputs=inner, optimize=False, expose=inner) if inner else [{} for _ in feeds]
    for feed, res in zip(feeds, runs, strict=True):
        res = {**{t: feed[t] for t in tensors if t in inputs}, **res}
        for t in tensors:
            v = np.abs(res[t]).reshape(-1, res[t].shape[-1]).max(axis=0)
            amax[t] = np.maximum(amax[t], v) if t in amax else v
    return amax


def smooth(src: Path, dst: Path, alpha: float, feeds: list[dict[str, np.ndarray]],
           op_types: tuple[str, ...] = ("MatMul", "Attention"), stats: dict[str, np.ndarray] | None = None,
           min_outlier_ratio: float = 0.0) -> dict[str, Any]:
    """SmoothQuant-style smoothing: ``x @ W == (x / s) @ (s * W)`` with per-input-channel
    ``s = max|x|^alpha / max|W|^(1-alpha)``, so the activation outlier channels that ruin a per-tensor
    INT8 range move into the weights, which are quantized per channel. The division is an explicit
    Mul before each node (its input is often also the residual stream, so it cannot be folded).

    Returns the statistics used (to reuse them for another alpha) and the smoothed node names.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    targets = [n for n in model.graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits
               and len(inits[n.input[1]].dims) == 2]
    if stats is None:
        stats = activation_absmax(src, sorted({n.input[0] for n in targets}), feeds)
    # One scale per activation tensor, shared by all the nodes that read it (Q, K and V read the same
    # input): one Mul per tensor instead of one per node.
    groups: dict[str, list[Any]] = {}
    for n in targets:
        x = stats.get(n.input[0])
        if x is None or x.shape[0] != inits[n.input[1]].dims[0]:
            continue
        # a tensor without outlier channels gains nothing from smoothing and would pay for a Mul
        if float(x.max()) < min_outlier_ratio * float(np.median(x)):
            continue
        groups.setdefault(n.input[0], []).append(n)
    scales: dict[str, np.ndarray] = {}
    for tensor, nodes in groups.items():
        x_max = np.maximum(stats[tensor], 1e-5)
        w_max = np.max([np.abs(numpy_helper.to_array(inits[n.input[1]])).max(axis=1) for n in nodes], axis=0)
        w_max = np.maximum(w_max, 1e-5)
        scales[tensor] = np.clip(x_max**alpha / w_max ** (1 - alpha), 1e-2, 1e2).astype(np.float32)
    group_names = {t: {n.name for n in nodes} for t, nodes in groups.items()}
    new_nodes, smoothed = [], []
    inserted: set[str] = set()
    for n in model.graph.node:
        tensor = n.input[0] if n.input else ""
        if tensor in scales and n.name in group_names[tensor]:
            s = scales[tensor]
            w = numpy_helper.to_array(inits[n.input[1]])
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1]))
            safe = tensor.replace("/", "_").replace(":", "_")
            inv_name, out_name = f"{safe}_smooth_inv", f"{safe}_smoothed"
            if tensor not in inserted:
                model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv_name))
                new_nodes.append(helper.make_node("Mul", [tensor, inv_name], [out_name], name=f"{n.name}_smooth"))
                inserted.add(tensor)
            n.input[0] = out_name
            smoothed.append(n.name)
        new_nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    onnx.save(model, str(dst))
    return {"stats": stats, "smoothed": smoothed, "muls": len(inserted)}
