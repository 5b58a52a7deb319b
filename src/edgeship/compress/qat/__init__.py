"""Quantization-aware training: ``config`` (QatConfig), ``batchnorm`` (folding), ``fake_quant``,
``export`` (quantized ONNX), ``int4`` (INT4 initializers), ``ptq`` (the baselines), ``step`` (``qat()``)."""
