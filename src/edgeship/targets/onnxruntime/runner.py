"""The ONNX Runtime runner: one InferenceSession, built lazily and once.

This is the only place in edgeship that opens an ONNX Runtime session. Everything that runs an ONNX
graph (checks, parity, the mixed search, localisation, calibration statistics, benchmarks) comes
through :class:`OrtRunner`, with the options it needs: threads, graph-optimisation level,
execution providers, profiling, and ``expose`` to read intermediate tensors as extra outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
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
    """``model`` is a Model, an ONNX file path, an ``onnx.ModelProto`` or its serialised bytes.

    ``expose`` adds intermediate tensors as outputs (``"all"``: every node's outputs; the runner's
    ``tensor_order`` then lists (tensor, node, op type) in graph order); ``outputs`` limits what
    ``infer`` returns. ``load_error`` chooses the error raised when ORT refuses the graph."""

    runtime: ClassVar[str] = "onnxruntime"

    def __init__(self, model: Model | str | Path | bytes | Any, threads: int | None = None,
                 graph_optimization: str = "all", providers: list[str] | None = None, profile: bool = False,
                 provider: str | None = None, profile_dir: str | None = None,
                 expose: Sequence[str] | str | None = None, outputs: Sequence[str] | None = None,
                 load_error: type[Exception] = BadInput) -> None:
        self._proto: Any = None
        if not isinstance(model, Model):
            model, self._proto = _as_model(model, expose is not None)
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
        self.expose = expose
        self.outputs = list(outputs) if outputs is not None else None
        self.load_error = load_error
        self.tensor_order: list[tuple[str, str, str]] = []
        self._inputs: set[str] = set()
        self._passthrough: set[str] = set()
        self._names: list[str] = []

    def _graph(self) -> str | bytes:
        """What the session loads: the file itself, or the graph with exposed tensors added."""
        if self.expose is None and self._proto is None:
            return str(self.model.path)
        import onnx

        proto = self._proto
        if proto is None:
            from edgeship.core.onnx_file import load

            proto = load(self.model.path, load_weights=True, check=False)
        if self.expose is not None:
            proto = _with_exposed(proto, self.expose, self.tensor_order)
        return proto.SerializeToString() if isinstance(proto, onnx.ModelProto) else proto

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
            session = ort.InferenceSession(self._graph(), so, providers=self.providers)
        except Exception as exc:  # ORT raises its own exception types for invalid graphs
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise self.load_error(f"ONNX Runtime cannot load {str(self.model.path)!r}: {first}") from None
        self._inputs = {i.name for i in session.get_inputs()}
        exposed_inputs = [] if self.expose in (None, "all") else [n for n in self.expose if n in self._inputs]
        self._passthrough = set(exposed_inputs)
        self._names = self.outputs or [o.name for o in session.get_outputs()] + exposed_inputs
        return session

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        # Feeds may carry inputs this graph does not take (a twin model's extra input): dropped.
        run = [n for n in self._names if n not in self._passthrough]
        outs = dict(zip(run, session.run(run, {k: v for k, v in feeds.items() if k in self._inputs}), strict=True))
        # exposed graph inputs are what was fed (a session cannot output its own inputs)
        return {n: np.asarray(feeds[n] if n in self._passthrough else outs[n]) for n in self._names}

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


def _as_model(source: str | Path | bytes | Any, need_proto: bool) -> tuple[Model, Any]:
    """A Model for a path, or a path-less Model for an in-memory graph (the proto kept to load)."""
    if isinstance(source, str | Path):
        return Model.open(source), None
    import onnx

    from edgeship.core.onnx_file import io_spec

    proto = onnx.load_from_string(source) if isinstance(source, bytes) else source
    if not isinstance(proto, onnx.ModelProto):
        raise BadInput(f"OrtRunner takes a Model, a path, an onnx.ModelProto or its bytes, not {type(source).__name__}")
    return Model(Path("<in-memory>.onnx"), "onnx", io_spec(proto)), (proto if not isinstance(source, bytes) or
                                                                      need_proto else source)


def _with_exposed(proto: Any, expose: Sequence[str] | str, order: list[tuple[str, str, str]]) -> Any:
    """A copy of the graph whose outputs also include ``expose`` (or every node output for "all");
    fills ``order`` with (tensor, node, op) of every node output, in graph order."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto if isinstance(proto, onnx.ModelProto) else onnx.load_from_string(proto))
    existing = {o.name for o in model.graph.output}
    wanted = None if expose == "all" else set(expose)
    order.clear()
    for node in model.graph.node:
        for t in node.output:
            if not t:
                continue
            order.append((t, node.name, node.op_type))
            if t not in existing and (wanted is None or t in wanted):
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
                existing.add(t)
    return model
