"""The quantization variants ``edgeship optimize`` builds: one per default method config.

Each builds ``ctx.out`` from the FP32 export with ``quantize``. Methods that calibrate use the
recipe's calibration data; ``mixed`` selects on the calibration source's ``select`` split (or a
part of the calibration data held out of calibration) and the selection probes, never on the
evaluation data or the check's probes, so the pipeline's own check on the evaluation (golden) data
stays an independent verdict. ``int8-dynamic`` is not built for conv-heavy graphs (the reason goes
in the report). A mixed search that cannot meet the gate still yields its closest model: the
report then shows it failing, with the reason.
"""

from __future__ import annotations

from edgeship.compress.quantize.api import default_method_configs
from edgeship.compress.quantize.configs import Int4WeightConfig, Int8DynamicConfig, MixedConfig, QuantConfig
from edgeship.core.artifact import Model
from edgeship.pipeline.variants import VariantContext, register_builder, register_variant

PRECISIONS = {"fp16": "fp16", "int8-dynamic": "int8", "int8-static": "int8", "int4-weight": "int4", "mixed": "mixed"}


@register_builder(QuantConfig)
def build_quantized(ctx: VariantContext, config: QuantConfig) -> Model:
    from edgeship.compress.quantize.api import quantize
    from edgeship.core.errors import GateFailed

    if isinstance(config, Int8DynamicConfig) and not isinstance(config, MixedConfig):
        import onnx

        from edgeship.compress.quantize.graph import conv_heavy
        from edgeship.core.errors import NotApplicable

        why = conv_heavy(onnx.load(str(ctx.fp32.path), load_external_data=False))
        if why:
            raise NotApplicable(f"int8-dynamic skipped: {why}")
    calib = ctx.calib() if config.needs_calibration else None
    try:
        return quantize(ctx.fp32, config, out=ctx.out, calib=calib)
    except GateFailed as exc:
        closest = getattr(exc, "model", None)
        if closest is None:
            raise
        return closest


@register_builder(MixedConfig)
def build_mixed(ctx: VariantContext, config: MixedConfig) -> Model:
    # the recipe's gate; half the interactive default budget, as optimize builds many variants
    return build_quantized(ctx, config.replace(gates=tuple(ctx.gates) or config.gates,
                                               time_budget_s=min(config.time_budget_s, 300.0)))


for _cfg in default_method_configs():
    register_variant(_cfg.kind, PRECISIONS[_cfg.kind], _cfg, f"edgeship.quantize with {type(_cfg).__name__}()",
                     timed=isinstance(_cfg, MixedConfig))  # the mixed search times its candidates

# 8-bit weights, activations quantized at run time: MatMulNBits at accuracy_level 4 on ONNX Runtime; on
# OpenVINO, NNCF's compress_weights, its CPU plugin quantizing activations per token and group
register_variant("int8-weight", "int8", Int4WeightConfig(bits=8),
                 "INT8 weights (activations quantized at run time, per token and group)")
