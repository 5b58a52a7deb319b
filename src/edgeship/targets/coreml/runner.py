"""The Core ML runner (macOS only: coremltools' predict calls the Core ML framework)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import NotRunnableHere
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner
from edgeship.targets.coreml.target import NOT_MACOS


class CoremlRunner(Runner):
    runtime: ClassVar[str] = "coreml"

    def __init__(self, model: Model, compute_units: str = "CPU_ONLY", threads: int | None = None) -> None:
        super().__init__(model, threads)
        self.compute_units = compute_units

    def _build(self) -> Any:
        import sys

        if sys.platform != "darwin":
            raise NotRunnableHere(NOT_MACOS)
        ct = require("coremltools", "coreml")
        return ct.models.MLModel(str(self.model.path), compute_units=getattr(ct.ComputeUnit, self.compute_units))

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        # Core ML takes int32 where the source had int64
        ins = {k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in feeds.items()
               if k in self.model.io.input_names}
        out = session.predict(ins)
        return {n: np.asarray(out[n]) for n in self.model.io.output_names}
