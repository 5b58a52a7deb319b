"""The ExecuTorch runner (executorch.runtime): positional inputs in the source's argument order."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner


class ExecuTorchRunner(Runner):
    runtime: ClassVar[str] = "executorch"

    def _build(self) -> Any:
        rt = require("executorch.runtime", "executorch", "executorch")
        if self.threads:
            self._set_threads(int(self.threads))
        try:
            program = rt.Runtime.get().load_program(str(self.model.path))
            method = program.load_method("forward")
        except (RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0][:300]
            raise BadInput(f"ExecuTorch cannot load {str(self.model.path)!r}: {first}") from None
        meta = method.metadata
        batch_one = all(list(meta.input_tensor_meta(i).sizes())[:1] == [1] for i in range(meta.num_inputs()))
        return {"program": program, "method": method, "batch_one": batch_one}

    @staticmethod
    def _set_threads(threads: int) -> None:
        """ExecuTorch's CPU threadpool is one per process, sized by an experimental call; it is reset
        only when the size differs (a reset while another method runs would be unsafe)."""
        try:
            from executorch.extension.pybindings import portable_lib
        except ImportError:
            return
        get = getattr(portable_lib, "_threadpool_get_thread_count", None)
        reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
        if get is not None and reset is not None and get() != threads:
            reset(threads)

    def _one_row_at_a_time(self, session: Any) -> bool:
        return bool(session["batch_one"])

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        import torch

        arrays = self.inputs_in_order(feeds, self.model.io.input_names)
        try:
            outs = session["method"].execute([torch.from_numpy(np.asarray(x, order="C")) for x in arrays])
        except (RuntimeError, ValueError) as exc:
            raise BadInput(f"ExecuTorch could not run {self.model.path.name} on these inputs "
                           f"({str(exc).splitlines()[0][:200]}); check their shapes") from None
        out_names = self.model.io.output_names or [f"output_{i}" for i in range(len(outs))]
        return {n: o.detach().numpy() if hasattr(o, "detach") else np.asarray(o)
                for n, o in zip(out_names, outs, strict=False)}
