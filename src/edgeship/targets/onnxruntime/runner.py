"""The ONNX Runtime runner: one InferenceSession, built lazily and once."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.base import Feeds, Runner

GRAPH_OPT_LEVELS = ("disable", "basic", "extended", "all")

# Execution providers by the short names users type (--provider cuda); full names pass through.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "dml": "DmlExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}


def provider_name(name: str) -> str:
    """``cuda`` → ``CUDAExecutionProvider``; a full provider name is returned as it is."""
    if name in PROVIDERS.values():
        return name
    try:
        return PROVIDERS[name.lower()]
    except KeyError:
        raise BadInput(f"unknown execution provider {name!r}; known: {', '.join(PROVIDERS)}") from None


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_threads() -> int:
    """Physical cores, which is what ONNX Runtime itself picks, made explicit so runs are comparable."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class OrtRunner(Runner):
    runtime: ClassVar[str] = "onnxruntime"

    def __init__(self, model: Model, threads: int | None = None, graph_optimization: str = "all",
                 providers: list[str] | None = None, profile: bool = False, provider: str | None = None,
                 profile_dir: str | None = None) -> None:
        super().__init__(model)
        if graph_optimization not in GRAPH_OPT_LEVELS:
            raise BadInput(f"graph optimisation {graph_optimization!r}; choose one of {', '.join(GRAPH_OPT_LEVELS)}")
        self.threads = threads or default_threads()
        self.graph_optimization = graph_optimization
        # ``provider`` picks one EP by short name; CPU stays as the fallback for nodes it cannot take
        chosen = [provider_name(p) for p in providers] if providers else []
        if provider:
            chosen = [provider_name(provider)] + (["CPUExecutionProvider"] if provider_name(provider) !=
                                                   "CPUExecutionProvider" else [])
        self.providers = chosen or ["CPUExecutionProvider"]
        self.profile = profile
        self.profile_dir = profile_dir

    def _build(self) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.graph_optimization]
        so.log_severity_level = 3
        if self.profile:
            so.enable_profiling = True
            if self.profile_dir:
                so.profile_file_prefix = f"{self.profile_dir}/ort_profile"
        available = set(ort.get_available_providers())
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise BadInput(f"execution provider(s) {', '.join(missing)} not available here; "
                           f"available: {', '.join(sorted(available))}")
        try:
            return ort.InferenceSession(str(self.model.path), so, providers=self.providers)
        except Exception as exc:  # ORT raises its own exception types for invalid graphs
            first = str(exc).strip().splitlines()[0][:300]
            raise BadInput(f"ONNX Runtime cannot load {str(self.model.path)!r}: {first}") from None

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        names = [o.name for o in session.get_outputs()]
        wanted = {i.name for i in session.get_inputs()}
        outs = session.run(names, {k: v for k, v in feeds.items() if k in wanted})
        return {n: np.asarray(o) for n, o in zip(names, outs, strict=True)}

    def node_providers(self) -> list[dict[str, str]]:
        """Which execution provider ran each node, from ONNX Runtime's profile (needs ``profile=True``
        and at least one ``infer``). Ends profiling: later runs are not profiled."""
        import json
        import os

        if not self.profile:
            raise BadInput("node placement needs a profiled session: OrtRunner(model, profile=True)")
        session = self.activate()
        path = session.end_profiling()
        try:
            with open(path) as fh:
                events = json.load(fh)
        finally:
            os.unlink(path)
        seen: dict[str, dict[str, str]] = {}
        for ev in events:
            args = ev.get("args", {})
            if ev.get("cat") == "Node" and "provider" in args:
                node = ev["name"].removesuffix("_kernel_time")
                seen.setdefault(node, {"node": node, "op": args.get("op_name", ""), "provider": args["provider"]})
        return list(seen.values())
