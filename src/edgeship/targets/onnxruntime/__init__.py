"""ONNX Runtime: the reference runtime for ONNX files (CPU here; other execution providers by name)."""

from __future__ import annotations

from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.targets.base import Target, register_target


@register_target
class OnnxRuntimeTarget(Target):
    name: ClassVar[str] = "onnxruntime"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    output_format: ClassVar[str] = "onnx"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    modules: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    extra: ClassVar[str] = "core"
    report_name: ClassVar[str] = "onnxruntime-cpu"
    runs_format: ClassVar[str] = "onnx"

    def runner(self, model: Model, **options: Any) -> Any:
        from edgeship.targets.onnxruntime.runner import OrtRunner

        return OrtRunner(model, **options)
