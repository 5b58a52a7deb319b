"""ONNX Runtime: the reference runtime for ONNX files (CPU here; other execution providers by name)."""

from __future__ import annotations

from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import NotRunnableHere
from edgeship.targets.base import Availability, Target, register_target


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


class OrtProviderTarget(OnnxRuntimeTarget):
    """ONNX Runtime with one execution provider (CPU as the fallback for nodes it does not take).

    Same ONNX files as ``onnxruntime``; selected by name (``--target onnxruntime-cuda``) or by
    ``OrtRunner(model, provider="cuda")``. Which provider ran each node: ``OrtRunner.node_providers``."""

    provider: ClassVar[str] = "cpu"
    runs_format: ClassVar[str] = ""  # plain .onnx files default to the CPU target

    def availability(self) -> Availability:
        base = super().availability()
        if not base.installed:
            return base
        from edgeship.targets.onnxruntime.runner import available_providers, provider_name

        full = provider_name(self.provider)
        if full not in available_providers():
            return Availability(True, False, f"{full} is not in this onnxruntime build")
        return Availability(True, True, "")

    def runner(self, model: Model, **options: Any) -> Any:
        from edgeship.targets.onnxruntime.runner import OrtRunner

        avail = self.availability()
        if not avail.runs_here:
            raise NotRunnableHere(avail.why)
        options.setdefault("provider", self.provider)
        return OrtRunner(model, **options)


# One registered target per execution provider a user may ask for by name.
EP_TARGETS = ("cuda", "tensorrt", "openvino", "coreml", "nnapi", "qnn")
for _short in EP_TARGETS:
    register_target(type(f"Ort{_short.title()}Target", (OrtProviderTarget,),
                         {"name": f"onnxruntime-{_short}", "provider": _short,
                          "report_name": f"onnxruntime-{_short}", "__module__": __name__}))
