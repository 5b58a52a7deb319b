"""Weight-only block quantization (MatMulNBits): 4-bit (or 8-bit) weights in blocks along K with one
scale per block; with ``accuracy_level=4`` ORT quantizes the activations blockwise to INT8 at run
time and uses integer kernels. The embedding table can be stored as 4-bit GatherBlockQuantized."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.compress.quantize import graph
from edgeship.compress.quantize.api import QuantContext, register_quantizer
from edgeship.compress.quantize.configs import Int4WeightConfig
from edgeship.core.errors import BadInput, NotApplicable


def _to_opset21(model: Any) -> Any:
    """GatherBlockQuantized needs opset 21 (int4 types); ORT's quantizer only relabels the opset,
    which breaks ops whose attributes became inputs (ReduceL2 axes), so convert properly first."""
    from onnx import version_converter

    if graph.opset(model) >= 21:
        return model
    try:
        return version_converter.convert_version(model, 21)
    except Exception as exc:  # the converter raises plain RuntimeErrors for ops it cannot adapt
        raise BadInput(f"int4-weight: cannot move the model to opset 21 for the embedding quantization "
                       f"({type(exc).__name__}); rerun with quantize_gather=false (--no-quantize-gather)") from None


@register_quantizer(Int4WeightConfig)
def int4_weight(src: Path, cfg: Int4WeightConfig, ctx: QuantContext, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as mnq

    graph.quiet_ort_logs()
    model = onnx.load(str(src))
    graph.ensure_names(model)
    from edgeship.compress.quantize.prepare import resolve_nodes

    excluded = resolve_nodes(src, cfg.nodes_to_exclude) if cfg.nodes_to_exclude else []
    gather = cfg.quantize_gather and cfg.bits == 4 and any(
        n.op_type == "Gather" for n in graph.weighted_nodes(model, ("Gather",)))
    if gather:
        model = _to_opset21(model)
    ops = ("MatMul", "Gather") if gather else ("MatMul",)
    axes = (("MatMul", 0), ("Gather", 1))
    algo = mnq.DefaultWeightOnlyQuantConfig(block_size=cfg.block_size, is_symmetric=cfg.symmetric,
                                            accuracy_level=cfg.accuracy_level or None, bits=cfg.bits,
                                            op_types_to_quantize=ops, quant_axes=axes)
    quantizer = mnq.MatMulNBitsQuantizer(model, bits=cfg.bits, block_size=cfg.block_size,
                                         is_symmetric=cfg.symmetric, accuracy_level=cfg.accuracy_level or None,
                                         nodes_to_exclude=excluded, op_types_to_quantize=ops,
                                         quant_axes=axes, algo_config=algo)
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), False)
    counts: dict[str, int] = {}
    for n in onnx.load(str(out), load_external_data=False).graph.node:
        if n.op_type in ("MatMulNBits", "GatherBlockQuantized"):
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    if not counts:
        raise NotApplicable("int4-weight: the model has no MatMul with constant weights to quantize; "
                       "use int8-static for convolutional models")
    return {"quantized_ops": counts, "gather_quantized": gather, "nodes_kept_fp32": excluded}
