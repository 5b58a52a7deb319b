"""The TFLite Micro runner: the reference microcontroller interpreter, run on the host."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner
from edgeship.targets.tflite.runner import dequantize, file_layout_inputs, io_map_of, onnx_layout, quantize


def _scale_zero(details: dict[str, Any]) -> tuple[float, int] | None:
    """The tensor's (scale, zero point), or None for a float tensor."""
    q = details.get("quantization_parameters") or {}
    scales, zeros = q.get("scales", []), q.get("zero_points", [])
    return (float(scales[0]), int(zeros[0])) if len(scales) else None


class MicroRunner(Runner):
    """Runs one row at a time (microcontroller programs have a fixed batch of 1)."""

    runtime: ClassVar[str] = "tflite-micro"

    def __init__(self, model: Model, arena_size: int | None = None, threads: int | None = None) -> None:
        super().__init__(model, 1)  # a microcontroller interpreter is single-threaded; ``threads`` is ignored
        need = model.facts.get("arena_bytes")
        # the measured arena plus headroom for alignment, else a generous default
        self.arena_size = arena_size or (int(need) * 2 + 4096 if need else 4 * 1024 * 1024)

    def _build(self) -> Any:
        runtime = require("tflite_micro.python.tflite_micro.runtime", "micro", "tflite-micro")
        try:
            it = runtime.Interpreter.from_file(str(self.model.path), arena_size=self.arena_size)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0][:300]
            raise BadInput(f"TFLite Micro cannot load {self.model.path.name}: {first}") from None
        return it, io_map_of(self.model, self.model.io.input_names, self.model.io.output_names)

    def _one_row_at_a_time(self, session: Any) -> bool:
        return True

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        it, io_map = session
        for index, x in file_layout_inputs(self, io_map, feeds):
            d = it.get_input_details(index)
            dtype = np.dtype(d["dtype"])
            q = _scale_zero(d)
            if dtype.kind in "iu" and x.dtype.kind == "f" and q:
                x = quantize(x, dtype, *q)
            it.set_input(np.ascontiguousarray(x.astype(dtype).reshape(tuple(int(s) for s in d["shape"]))), index)
        it.invoke()
        out: Feeds = {}
        for m in io_map["outputs"]:
            y = np.array(it.get_output(m["index"]))
            q = _scale_zero(it.get_output_details(m["index"]))
            out[m["name"]] = onnx_layout(m, dequantize(y, *q) if q else y)
        return out
