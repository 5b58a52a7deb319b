"""The OpenVINO runner: compile for a device with an explicit inference precision hint."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner

HINTS = ("f32", "bf16", "f16")


class OpenVinoRunner(Runner):
    """Runs OpenVINO IR (or an ONNX file directly). The precision hint defaults to what the converter
    recorded (f32 for fp32/int8), because OpenVINO's CPU default here is bf16, which breaks parity."""

    runtime: ClassVar[str] = "openvino"

    def __init__(self, model: Model, device: str = "CPU", precision_hint: str | None = None,
                 threads: int | None = None) -> None:
        super().__init__(model, threads)
        hint = precision_hint or str(model.facts.get("inference_precision", "f32"))
        if hint not in HINTS:
            raise BadInput(f"OpenVINO precision hint {hint!r}; choose one of {', '.join(HINTS)}")
        self.device = device
        self.precision_hint = hint
        self.info: dict[str, Any] = {}

    def _build(self) -> Any:
        ov = require("openvino", "openvino")
        core = ov.Core()
        if self.device not in core.available_devices and self.device != "AUTO":
            have = ", ".join(core.available_devices)
            raise BadInput(f"OpenVINO device {self.device!r} not present; available: {have}")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision_hint}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        try:
            compiled = core.compile_model(core.read_model(str(self.model.path)), self.device, config)
        except RuntimeError as exc:
            raise BadInput(f"OpenVINO cannot compile {str(self.model.path)!r}: "
                           f"{str(exc).strip().splitlines()[0][:300]}") from None
        # what the device really runs at (f16 falls back to bf16 on CPUs without native f16)
        actual = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.info["inference_precision"] = actual.get_type_name() if hasattr(actual, "get_type_name") else str(actual)
        return compiled.create_infer_request(), compiled

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        request, compiled = session
        wanted = [i.get_any_name() for i in compiled.inputs]
        request.infer({n: np.ascontiguousarray(x) for n, x in zip(wanted, self.inputs_in_order(feeds, wanted))})
        names = self.model.io.output_names or [o.get_any_name() for o in compiled.outputs]
        outs: Feeds = {}
        for i, out in enumerate(compiled.outputs):
            name = names[i] if i < len(names) else out.get_any_name()
            outs[name] = np.array(request.get_output_tensor(i).data)
        return outs
