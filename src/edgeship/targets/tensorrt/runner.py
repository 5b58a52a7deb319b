"""The TensorRT runner: deserialize the engine, bind CUDA buffers (torch tensors), execute_async_v3."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner, get_target


def _runtime_engine(path: Path) -> tuple[Any, Any]:
    get_target("tensorrt").require_runnable()
    trt = require("tensorrt", "tensorrt", "TensorRT")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        raise BadInput(f"{str(path)!r} is not an engine this TensorRT version and GPU can load; rebuild it here")
    return trt, engine


def engine_io(path: Path) -> IOSpec:
    trt, engine = _runtime_engine(path)
    ins, outs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        spec = TensorSpec(name, str(np.dtype(trt.nptype(engine.get_tensor_dtype(name)))),
                          tuple(None if d < 0 else int(d) for d in engine.get_tensor_shape(name)))
        (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append(spec)
    return IOSpec(tuple(ins), tuple(outs))


class TensorrtRunner(Runner):
    """Runs a serialized engine on the GPU (``threads`` is accepted and ignored: the work is the GPU's)."""

    runtime: ClassVar[str] = "tensorrt"

    def _build(self) -> Any:
        import torch

        trt, engine = _runtime_engine(self.model.path)
        return {"trt": trt, "engine": engine, "context": engine.create_execution_context(),
                "stream": torch.cuda.Stream()}

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        import torch

        trt, engine, ctx, stream = session["trt"], session["engine"], session["context"], session["stream"]
        keep: list[Any] = []
        outputs: dict[str, Any] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                (x,) = self.inputs_in_order(feeds, [name])
                want = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                t = torch.from_numpy(np.ascontiguousarray(x.astype(want))).cuda()
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, int(t.data_ptr()))
                keep.append(t)
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                t = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=getattr(torch, dtype.name), device="cuda")
                ctx.set_tensor_address(name, int(t.data_ptr()))
                outputs[name] = t
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise BadInput(f"TensorRT failed to run {self.model.path.name} on these inputs")
        stream.synchronize()
        return {n: t.cpu().numpy() for n, t in outputs.items()}
