"""The LiteRT runner (ai-edge-litert): ONNX-layout arrays in and out, quantized I/O handled."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner
from edgeship.targets.util import inverse_perm, run_rows


def default_map(model: Model, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Without a sidecar: the file's tensors by position, named after the model's IO spec, no transposes."""
    def entries(names: list[str], details: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": names[i] if i < len(names) else d["name"], "index": i, "perm": None}
                for i, d in enumerate(details)]
    return {"inputs": entries(model.io.input_names, inputs), "outputs": entries(model.io.output_names, outputs)}


def quantize(x: np.ndarray, dtype: Any, scale: float, zero: int) -> np.ndarray:
    if scale == 0:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    if scale == 0 or x.dtype.kind == "f":
        return x
    return ((x.astype(np.float32) - zero) * scale).astype(np.float32)


class TfliteRunner(Runner):
    runtime: ClassVar[str] = "litert"

    def __init__(self, model: Model, threads: int | None = None) -> None:
        super().__init__(model)
        self.threads = threads

    def _build(self) -> Any:
        interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
        try:
            it = interp.Interpreter(model_path=str(self.model.path), num_threads=self.threads or None)
        except (ValueError, RuntimeError) as exc:
            raise BadInput(f"LiteRT cannot load {str(self.model.path)!r}: {str(exc).splitlines()[0][:300]}") from None
        it.allocate_tensors()
        ins, outs = it.get_input_details(), it.get_output_details()
        io_map = self.model.facts.get("tflite") or default_map(self.model, ins, outs)
        # programs exported with a fixed batch of 1 (litert-torch) take one row at a time
        batch_one = all(int(d.get("shape_signature", d["shape"])[0]) == 1 for d in ins if len(d["shape"]))
        return {"it": it, "ins": ins, "outs": outs, "map": io_map, "batch_one": batch_one}

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        if session["batch_one"]:
            return run_rows(feeds, lambda row: self._one(session, row))
        return self._one(session, feeds)

    def _one(self, session: Any, feeds: Feeds) -> Feeds:
        it, ins, outs, io_map = session["it"], session["ins"], session["outs"], session["map"]
        arrays = []
        for m in io_map["inputs"]:
            if m["name"] not in feeds:
                raise BadInput(f"feeds lack input {m['name']!r} of {self.model.path.name}")
            x = np.asarray(feeds[m["name"]])
            if m.get("perm"):
                x = x.transpose(m["perm"])
            arrays.append((m["index"], ins[m["index"]], x))
        resized = False
        current = it.get_input_details()
        for pos, d, x in arrays:
            if tuple(current[pos]["shape"]) != x.shape:
                try:
                    it.resize_tensor_input(d["index"], list(x.shape), strict=True)
                except (ValueError, RuntimeError) as exc:
                    raise BadInput(f"{self.model.path.name}: input {d['name']!r} takes shape {list(d['shape'])}, "
                                   f"got {list(x.shape)} ({str(exc).splitlines()[0][:120]})") from None
                resized = True
        if resized:
            it.allocate_tensors()
        for _, d, x in arrays:
            dtype = np.dtype(d["dtype"])
            scale, zero = d["quantization"]
            x = quantize(x, dtype, scale, zero) if dtype.kind in "iu" and x.dtype.kind == "f" else x.astype(dtype)
            it.set_tensor(d["index"], np.ascontiguousarray(x))
        it.invoke()
        result: Feeds = {}
        for m in io_map["outputs"]:
            d = outs[m["index"]]
            y = dequantize(np.array(it.get_tensor(d["index"])), *d["quantization"])
            if m.get("perm"):
                y = y.transpose(inverse_perm(tuple(m["perm"])))
            result[m["name"]] = y
        return result
