"""The quantization variants ``edgeship optimize`` builds: one per default method config.

Each builds ``ctx.out`` from the FP32 export with ``quantize``. Methods that calibrate use the
recipe's calibration data; ``mixed`` selects on a part of that data held out of calibration and
never on the evaluation data, so the pipeline's own check on the evaluation (golden) data stays an
independent verdict. A mixed search that cannot meet the gate still yields its closest model: the
report then shows it failing, with the reason.
"""

from __future__ import annotations

from typing import Any

from edgeship.compress.quantize.api import default_method_configs
from edgeship.compress.quantize.configs import QuantConfig
from edgeship.pipeline.variants import VariantContext, register_variant

PRECISIONS = {"fp16": "fp16", "int8-dynamic": "int8", "int8-static": "int8", "int4-weight": "int4", "mixed": "mixed"}


def _builder(config: QuantConfig) -> Any:
    def build(ctx: VariantContext) -> Any:
        from edgeship.compress.quantize import MixedConfig, quantize
        from edgeship.core.errors import GateFailed

        cfg = config.replace(**ctx.options) if ctx.options else config  # the recipe's overrides, validated
        if isinstance(cfg, MixedConfig):
            # the recipe's gate; half the interactive default budget, as optimize builds many variants
            cfg = cfg.replace(gates=tuple(ctx.gates) or cfg.gates, time_budget_s=min(cfg.time_budget_s, 300.0))
        calib = ctx.calib() if cfg.needs_calibration else None
        try:
            return quantize(ctx.fp32, cfg, out=ctx.out, calib=calib)
        except GateFailed as exc:
            closest = getattr(exc, "model", None)
            if closest is None:
                raise
            return closest

    return build


for _cfg in default_method_configs():
    register_variant(_cfg.kind, PRECISIONS[_cfg.kind], f"edgeship.quantize with {type(_cfg).__name__}()")(
        _builder(_cfg))
