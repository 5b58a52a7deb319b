"""Core ML: .mlpackage bundles built from PyTorch with coremltools (prediction on macOS)."""
