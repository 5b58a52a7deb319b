"""ExecuTorch: .pte programs lowered from PyTorch with XNNPACK, run with executorch.runtime."""
