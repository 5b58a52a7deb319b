"""Quantization of ONNX models: ``quantize(model, config) -> Model``.

One typed config per method, each registered with ``@register_quantizer(ConfigClass)``:
``Fp16Config`` (fp16), ``Int8DynamicConfig`` (int8-dynamic), ``Int8StaticConfig`` (int8-static),
``Int4WeightConfig`` (int4-weight) and ``MixedConfig`` (mixed, accuracy-aware). Importing this
package is light; onnx/onnxruntime are imported when a method runs.
"""

from edgeship.compress.quantize.api import (
    QUANTIZERS,
    QuantContext,
    default_method_configs,
    methods,
    quantize,
    quantizer_for,
    register_quantizer,
)
from edgeship.compress.quantize.configs import (
    Fp16Config,
    Int4WeightConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
    MixedConfig,
    QuantConfig,
)

__all__ = [
    "QUANTIZERS",
    "Fp16Config",
    "Int4WeightConfig",
    "Int8DynamicConfig",
    "Int8StaticConfig",
    "MixedConfig",
    "QuantConfig",
    "QuantContext",
    "default_method_configs",
    "methods",
    "quantize",
    "quantizer_for",
    "register_quantizer",
]
