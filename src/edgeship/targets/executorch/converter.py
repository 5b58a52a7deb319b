"""PyTorch source → ExecuTorch .pte (XNNPACK), with PT2E INT8 quantization for precision int8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.atomic import atomic_path, check_output_path
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.executorch.target import ExecuTorchTargetConfig
from edgeship.targets.util import calib_rows, dynamic_shapes, inherited_facts, source_model


def convert(source: Any, out: Path, cfg: ExecuTorchTargetConfig, calib: Any = None) -> Model:
    require("executorch", "executorch")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    check_output_path(out)
    module = source.module.eval()
    args = tuple(source.example_inputs.values())
    shapes = dynamic_shapes(source, cfg.max_dim) if cfg.dynamic else None
    parent = source_model(source)
    facts: dict[str, Any] = {**inherited_facts(parent), "precision": cfg.precision, "backend": "xnnpack",
                             "input_layout": "as in the PyTorch source (unchanged)"}
    try:
        if cfg.precision == "int8":
            module, facts["quantization"] = _pt2e_int8(module, args, shapes, source, cfg, calib)
        program = torch.export.export(module, args, dynamic_shapes=shapes)
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        facts["delegation"] = delegation(edge.exported_program().graph_module)
        buffer = edge.to_executorch().buffer
    except BadInput:
        raise
    except Exception as exc:  # torch.export / lowering raise many kinds for unsupported code
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise BadInput(f"ExecuTorch cannot lower {source.name}: {type(exc).__name__}: {first}") from None
    facts["dynamic_dims"] = bool(shapes)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buffer)
    return parent.derive(out, "convert:executorch", cfg.to_dict(), fmt="pte", io=parent.io, facts=facts).save()


def _pt2e_int8(module: Any, args: tuple[Any, ...], shapes: Any, source: Any, cfg: ExecuTorchTargetConfig,
               calib: Any) -> tuple[Any, dict[str, Any]]:
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    rows = calib_rows(calib, source.io, cfg.calib_samples)
    if not rows:
        raise BadInput("executorch int8 needs calibration data; pass --calib data:NAME or an .npz file")
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=cfg.per_channel))
    graph = torch.export.export(module, args, dynamic_shapes=shapes).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for row in rows:
            prepared(*(torch.from_numpy(row[n]) for n in source.example_inputs))
    return convert_pt2e(prepared), {"scheme": "pt2e-xnnpack-symmetric", "per_channel": cfg.per_channel,
                                    "calib_samples": len(rows)}


def delegation(graph_module: Any) -> dict[str, Any]:
    """How many graph nodes XNNPACK runs (delegated) and how many stay on portable kernels, per operator."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    by_op = {op: {"delegated": b.delegated, "portable": b.non_delegated}
             for op, b in sorted(info.delegation_by_operator.items())}
    return {"delegated_subgraphs": info.num_delegated_subgraphs, "delegated_nodes": info.num_delegated_nodes,
            "portable_nodes": info.num_non_delegated_nodes, "by_operator": by_op,
            "portable_ops": sorted(op for op, b in by_op.items() if b["portable"])}
