"""FP16 with ONNX Runtime's converter (onnxruntime.transformers.float16): its output loads and runs in
ORT, unlike onnxconverter-common's. FP32 inputs/outputs are kept by default so callers do not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.compress.quantize import graph
from edgeship.compress.quantize.api import QuantContext, register_quantizer
from edgeship.compress.quantize.configs import Fp16Config


@register_quantizer(Fp16Config)
def fp16(src: Path, cfg: Fp16Config, ctx: QuantContext, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers import float16

    graph.quiet_ort_logs()
    model = onnx.load(str(src))
    graph.ensure_names(model)
    # ORT's own block list (ops without FP16 kernels on CPU, or that overflow) plus the user's.
    op_block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(cfg.op_block_list))
    nodes_block = sorted(set(cfg.node_block_list) | set(cfg.nodes_to_exclude))
    converted = float16.convert_float_to_float16(model, keep_io_types=cfg.keep_io_types, op_block_list=op_block,
                                                 node_block_list=nodes_block or None, disable_shape_infer=False)
    onnx.save(converted, str(out))
    return {"op_block_list": list(cfg.op_block_list), "nodes_kept_fp32": nodes_block}
