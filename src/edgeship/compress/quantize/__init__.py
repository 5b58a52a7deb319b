"""Quantization of ONNX models: ``api`` (``quantize(model, config) -> Model`` and the quantizer registry),
``configs`` (one typed config per method), one module per method (``fp16``, ``int8``,
``weight_only``, ``mixed``) and their helpers (``calibration``, ``prepare``, ``graph``)."""
