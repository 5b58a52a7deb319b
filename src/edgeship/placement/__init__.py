"""Op placement per target: which node runs where (execution provider, device, delegate), from the
runtime itself where it can tell (ONNX Runtime profiling, OpenVINO query_model, ExecuTorch's
delegation) and from versioned op-support tables (data/*.yaml) where it cannot (TFLite delegates,
TFLite Micro kernels). ``edgeship.placement.plan.placement(model, target)`` is the entry point."""
