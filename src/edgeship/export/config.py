"""How to export: :class:`ExportConfig` and the ``INPUT:AXIS:NAME`` dynamic-axis syntax."""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar, Literal

from edgeship.check.gates import PRECISION_GATES, parse_gates
from edgeship.core.config import Config
from edgeship.core.errors import BadInput

# Opset 18 is the lowest the dynamo exporter emits natively (lower ones go through a version converter
# that may fail), and the tools after export take it: onnxruntime.quantization, onnx2tf, OpenVINO.
DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 11, 23
# An FP32 export must match eager PyTorch like any FP32 candidate: the one FP32 tolerance of check/.
DEFAULT_PARITY_GATES = PRECISION_GATES["fp32"]
_AXIS_RE = re.compile(r"^(?P<input>[^:]+):(?P<axis>\d+)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$")


def parse_dynamic_axis(text: str) -> tuple[str, int, str]:
    """``"input_ids:1:sequence"`` → ``("input_ids", 1, "sequence")``; the name defaults to ``INPUT_dimAXIS``."""
    m = _AXIS_RE.match(text.strip())
    if not m:
        raise BadInput(f"--dynamic-axis {text!r}: expected INPUT:AXIS:NAME, for example input_ids:1:sequence")
    axis = int(m["axis"])
    name = m["name"] or ("batch" if axis == 0 else f"{m['input']}_dim{axis}")
    return m["input"], axis, name


@dataclasses.dataclass(frozen=True)
class ExportConfig(Config):
    """How to export. ``dynamic_axes`` items are ``INPUT:AXIS:NAME``; they add to what the source declares."""

    kind: ClassVar[str] = "export"

    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = False
    dynamic_axes: tuple[str, ...] = ()
    simplify: bool = True
    exporter: Literal["auto", "dynamo", "legacy"] = "auto"
    parity: bool = True
    parity_gates: tuple[str, ...] = DEFAULT_PARITY_GATES
    parity_samples: int = 32

    def validate(self) -> None:
        if not isinstance(self.opset, int) or isinstance(self.opset, bool) or not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise BadInput(f"opset {self.opset!r}: choose an integer from {MIN_OPSET} to {MAX_OPSET} "
                           f"(default {DEFAULT_OPSET})")
        if self.exporter not in ("auto", "dynamo", "legacy"):
            raise BadInput(f"exporter {self.exporter!r}: choose auto, dynamo or legacy")
        for item in self.dynamic_axes:
            parse_dynamic_axis(item)
        if not isinstance(self.parity_samples, int) or self.parity_samples < 1:
            raise BadInput(f"parity_samples {self.parity_samples!r}: give a positive number of samples")
        parse_gates(self.parity_gates)
