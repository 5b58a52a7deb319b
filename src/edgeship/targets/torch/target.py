"""PyTorch eager: the FP32 reference a golden check starts from, and a baseline for benchmarks."""

from __future__ import annotations

from edgeship.targets.base import Target, register_target

register_target(Target("torch", "edgeship.targets.torch.runner:TorchRunner", formats=("torch",), output_format="torch",
                       modules=("torch",), extra="core", report_name="pytorch-cpu"))
