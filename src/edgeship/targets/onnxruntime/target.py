"""ONNX Runtime: the reference runtime for ONNX files (CPU here; other execution providers by name).

``onnxruntime`` runs on the CPU provider; ``onnxruntime-cuda``, ``onnxruntime-tensorrt``, ... run the
same ONNX files with one execution provider (CPU as the fallback for the nodes it does not take),
selected by name (``--target onnxruntime-cuda``) or by ``OrtRunner(model, provider="cuda")``.
Placement comes from ONNX Runtime's own profile: which provider ran each node.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeship.core.artifact import Model
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.base import Runner, Target, register_target
from edgeship.targets.placement import OpPlacement, PlacementReport

ORT_RUNNER = "edgeship.targets.onnxruntime.runner:OrtRunner"
# One registered target per execution provider a user may ask for by name.
EP_TARGETS = ("cuda", "tensorrt", "openvino", "coreml", "nnapi", "qnn")


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeTarget(Target):
    provider: str = "cpu"  # the execution provider its runner asks for

    def why_not_here(self) -> str:
        if self.provider == "cpu":  # in every onnxruntime build
            return ""
        from edgeship.targets.onnxruntime.runner import available_providers, provider_name

        full = provider_name(self.provider)
        return "" if full in available_providers() else f"{full} is not in this onnxruntime build"

    def runner(self, model: Model | TorchSource, **options: Any) -> Runner:
        if self.provider != "cpu":
            options.setdefault("provider", self.provider)
        return super().runner(model, **options)

    def placement(self, model: Model, feeds: dict[str, Any] | None = None, provider: str | None = None,
                  **_: Any) -> PlacementReport:
        """The provider of each node, from a profiled run on ``feeds`` (default: one synthetic sample)."""
        import tempfile

        from edgeship.core.data import load_data
        from edgeship.targets.onnxruntime.runner import OrtRunner

        self.require_runnable()
        if feeds is None:
            feeds = load_data("data:synthetic", model.io, limit=1).samples[0]
        with (tempfile.TemporaryDirectory(prefix="edgeship-ort-profile-") as tmp,
              OrtRunner(model, provider=provider or self.provider, profile=True, profile_dir=tmp) as runner):
            runner.infer(feeds)
            nodes = runner.node_providers()
        rows = [OpPlacement(n["node"], n["op"], n["provider"]) for n in nodes]
        return PlacementReport(self.name, str(model.path), rows, "profiling")


register_target(OnnxRuntimeTarget("onnxruntime", ORT_RUNNER, modules=("onnxruntime",), extra="core",
                                  report_name="onnxruntime-cpu"))
for _short in EP_TARGETS:
    # plain .onnx files default to the CPU target, so these run no format by default
    register_target(OnnxRuntimeTarget(f"onnxruntime-{_short}", ORT_RUNNER, modules=("onnxruntime",), extra="core",
                                      runs_format="", provider=_short, refuse_unless_runnable=True))
