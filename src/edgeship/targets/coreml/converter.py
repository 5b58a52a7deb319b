"""PyTorch source → .mlpackage with coremltools, then weight compression and structural validation."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.atomic import check_output_path
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.coreml.target import NOT_MACOS, CoremlTargetConfig
from edgeship.targets.util import inherited_facts, replace_tree, scratch_dir, source_model


def input_types(ct: Any, source: Any, max_dim: int) -> list[Any]:
    """ct.TensorType per input: the batch fixed at the example's, declared dynamic axes as RangeDim;
    int64 becomes int32 (Core ML has no int64 tensors)."""
    types = []
    for name, t in source.example_inputs.items():
        axes = source.dynamic_axes.get(name, {})
        shape = [ct.RangeDim(lower_bound=1, upper_bound=max_dim, default=int(d)) if (a in axes and a != 0) else int(d)
                 for a, d in enumerate(t.shape)]
        dtype = t.numpy().dtype
        types.append(ct.TensorType(name=name, shape=shape, dtype=np.int32 if dtype == np.int64 else dtype))
    return types


def convert(source: Any, out: Path, cfg: CoremlTargetConfig, calib: Any = None) -> Model:
    """``calib`` is not used: Core ML's weight compression needs no calibration data."""
    ct = require("coremltools", "coreml")
    import torch

    if out.suffix != ".mlpackage":
        raise BadInput(f"Core ML ML programs are .mlpackage bundles; name the output *.mlpackage, not {out.name!r}")
    check_output_path(out)
    module = source.module.eval()
    args = tuple(source.example_inputs.values())
    try:
        with torch.no_grad():
            graph = torch.jit.trace(module, args) if cfg.frontend == "trace" else torch.export.export(module, args)
        mlmodel = ct.convert(
            graph, inputs=input_types(ct, source, cfg.max_dim),
            outputs=[ct.TensorType(name=n) for n in source.output_names], convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32 if cfg.precision == "fp32" else ct.precision.FLOAT16,
            minimum_deployment_target=getattr(ct.target, cfg.deployment_target))
        mlmodel = compress(mlmodel, cfg.precision)
    except BadInput:
        raise
    except Exception as exc:  # coremltools raises plain exceptions for unsupported ops
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise BadInput(f"coremltools cannot convert {source.name}: {type(exc).__name__}: {first}") from None
    parent = source_model(source)
    with scratch_dir(out) as work:
        tmp = work / out.name
        mlmodel.save(str(tmp))
        structure = validate_structure(tmp)
        replace_tree(tmp, out)
    facts = {**inherited_facts(parent), "precision": cfg.precision, "coreml": structure, "runs_on": "macOS/iOS",
             "prediction": NOT_MACOS, "input_layout": "as in the PyTorch source (unchanged)"}
    return parent.derive(out, "convert:coreml", cfg.to_dict(), fmt="mlpackage", io=parent.io, facts=facts).save()


def compress(mlmodel: Any, precision: str) -> Any:
    """INT8 linear weights, or 4-bit k-means palettization (16-entry lookup tables)."""
    if precision not in ("int8-weights", "palette4"):
        return mlmodel
    import coremltools.optimize.coreml as cto

    if precision == "int8-weights":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", weight_threshold=0)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op))
    op = cto.OpPalettizerConfig(nbits=4, mode="kmeans", weight_threshold=0)
    return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op))


def validate_structure(path: Path) -> dict[str, Any]:
    """Reload the saved package without Core ML's runtime and read its program: op counts, inputs, outputs."""
    from edgeship.targets.formats import inspect_mlpackage, mlmodel_spec

    spec = mlmodel_spec(path)
    if not spec.HasField("mlProgram"):
        raise BadInput(f"{path.name} has no ML program; it is not what coremltools should have written")
    ops: collections.Counter[str] = collections.Counter()
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            ops.update(op.type for op in block.operations)
    io = inspect_mlpackage(path)
    return {"spec_version": int(spec.specificationVersion), "ops": dict(sorted(ops.items())),
            "op_count": sum(ops.values()), "inputs": [t.to_dict() for t in io.inputs],
            "outputs": [t.to_dict() for t in io.outputs],
            "compressed_weight_ops": sum(v for k, v in ops.items() if k.startswith("constexpr_"))}
