"""The TFLite Micro runner: the reference microcontroller interpreter, run on the host."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner
from edgeship.targets.tflite.runner import dequantize, quantize
from edgeship.targets.util import inverse_perm, run_rows


class MicroRunner(Runner):
    """Runs one row at a time (microcontroller programs have a fixed batch of 1)."""

    runtime: ClassVar[str] = "tflite-micro"

    def __init__(self, model: Model, arena_size: int | None = None, threads: int | None = None) -> None:
        super().__init__(model)
        self.threads = 1  # a microcontroller interpreter is single-threaded; ``threads`` is accepted and ignored
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
        io_map = self.model.facts.get("tflite")
        if not io_map:
            io_map = {"inputs": [{"name": s.name, "index": i, "perm": None}
                                 for i, s in enumerate(self.model.io.inputs)],
                      "outputs": [{"name": s.name, "index": i, "perm": None}
                                  for i, s in enumerate(self.model.io.outputs)]}
        return it, io_map

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        return run_rows(feeds, lambda row: self._one(session, row))

    def _one(self, session: Any, feeds: Feeds) -> Feeds:
        it, io_map = session
        for m in io_map["inputs"]:
            if m["name"] not in feeds:
                raise BadInput(f"feeds lack input {m['name']!r} of {self.model.path.name}")
            x = np.asarray(feeds[m["name"]])
            if m.get("perm"):
                x = x.transpose(m["perm"])
            d = it.get_input_details(m["index"])
            dtype = np.dtype(d["dtype"])
            q = d.get("quantization_parameters") or {}
            scales, zeros = q.get("scales", []), q.get("zero_points", [])
            if dtype.kind in "iu" and x.dtype.kind == "f" and len(scales):
                x = quantize(x, dtype, float(scales[0]), int(zeros[0]))
            x = x.astype(dtype).reshape(tuple(int(s) for s in d["shape"]))
            it.set_input(np.ascontiguousarray(x), m["index"])
        it.invoke()
        out: Feeds = {}
        for m in io_map["outputs"]:
            y = np.array(it.get_output(m["index"]))
            q = it.get_output_details(m["index"]).get("quantization_parameters") or {}
            if len(q.get("scales", [])):
                y = dequantize(y, float(q["scales"][0]), int(q["zero_points"][0]))
            if m.get("perm"):
                y = y.transpose(inverse_perm(tuple(m["perm"])))
            out[m["name"]] = y
        return out
