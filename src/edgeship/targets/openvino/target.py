"""OpenVINO: ONNX read and compiled for CPU (f32 precision hint for parity; bf16/f16 as explicit
variants) and NNCF post-training INT8 as a second INT8 quantizer. Files are OpenVINO IR (.xml + .bin).
Placement is the device plugin's own ``query_model``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.targets.base import Target, TargetConfig, register_target
from edgeship.targets.openvino.offline import decline_telemetry
from edgeship.targets.placement import OpPlacement, PlacementReport

# precision -> (weights compressed to fp16 in the IR, CPU INFERENCE_PRECISION_HINT)
PRECISIONS: dict[str, tuple[bool, str]] = {
    "fp32": (False, "f32"),
    "fp16": (True, "f16"),
    "bf16": (False, "bf16"),
    "int8": (False, "f32"),  # NNCF INT8; activations the quantizer left in float run in f32
    # NNCF compress_weights INT8 (asymmetric, per output channel; embeddings too): 8-bit weights; the
    # CPU plugin quantizes each layer's activations to INT8 at run time, per token and per group of
    # input channels (DYNAMIC_QUANTIZATION_GROUP_SIZE, searched with a selector: ACTIVATION_GROUPS),
    # the rest in bf16 where the CPU has it. On MiniLM (benchmarks/quantization.py): 26% of the FP32
    # size, passing where static INT8 fails; at b1 s32 2.31x ORT FP32 (Intel Xeon with AMX, groups of
    # 32), 2.4x with groups of 32 and 2.8x with groups of 128 (AMD EPYC with AVX512-VNNI)
    "int8-weight": (False, "bf16"),
    # the variant's own quantization, as built: OpenVINO reads an ONNX graph's QuantizeLinear/
    # DequantizeLinear pairs and runs those ops in INT8; what the quantizer left in float runs at
    # bf16 where the CPU has it. optimize converts the mixed variant this way. On EfficientNet-Lite0
    # (Intel Xeon with AMX, static shape, one process): the mixed QDQ file 1.82x ORT FP32, passing,
    # where ONNX Runtime runs the same file at 1.34x
    "as-built": (False, "bf16"),
}
MODEL_TYPES = ("auto", None, "transformer")
# int8-weight: the groups of input channels that share an activation scale, coarsest (fastest: fewer
# scales, longer INT8 dot products) first; a selector keeps the coarsest that passes. Measured on
# MiniLM (AMD EPYC, b1 s32): 32 (OpenVINO's default) 2.0-2.4x ORT FP32, 64 2.6x, 128 2.8x; 384 (one
# scale per token in most layers) failed the held-out gate (min cosine 0.976)
ACTIVATION_GROUPS = (128, 64, 32)
# (candidates as (label, Model)) -> (index of the one to keep, a record per candidate)
Selector = Callable[[list[tuple[str, Model]]], tuple[int, list[dict[str, Any]]]]
PRESETS = ("performance", "mixed")


@dataclasses.dataclass(frozen=True)
class OpenVinoTargetConfig(TargetConfig):
    kind: ClassVar[str] = "target-openvino"
    precisions: ClassVar[tuple[str, ...]] = tuple(PRECISIONS)
    calib_samples: int = 300  # NNCF subset size
    # "transformer" turns on NNCF's transformer scheme; "auto" turns it on for BERT-like ONNX graphs
    model_type: str | None = "auto"
    preset: str = "performance"  # NNCF preset: symmetric ("performance") or asymmetric activations ("mixed")
    # SmoothQuant within the transformer scheme. Measured on MiniLM (calibrated on sentences of their
    # natural lengths, short ones included; 200 held-out sentences): worst-case cosine 0.992 with it,
    # 0.957 without (benchmarks/quantization.py). ENVIRONMENT.md saw the opposite on static 1x32 shapes.
    smooth_quant: bool = True
    fast_bias_correction: bool = True
    # With a selector (optimize hands one in, built by check.selection): NNCF's
    # settings are chosen per model rather than fixed — for a transformer, SmoothQuant on and off
    # and the generic scheme; for other graphs, the two presets and full bias correction — each
    # judged on selection data and probes, the best kept. Without one, the fields above apply.
    search: bool = True
    # int8-weight: input channels per run-time activation scale (OpenVINO's DYNAMIC_QUANTIZATION_GROUP_SIZE);
    # None: searched with a selector (ACTIVATION_GROUPS), OpenVINO's default without one; 0 keeps
    # activations in float
    activation_group_size: int | None = None
    # run as static-shape models, one compiled per input shape (12-25 % faster than dynamic shapes on
    # MiniLM); with length_buckets, text inputs are padded to the next bucket (masked out) first
    static_shapes: bool = False
    length_buckets: tuple[int, ...] = ()
    # fp16 / int8: measure every layer's activations in f32 on the sample inputs first and keep in f32
    # what the lower precision cannot hold (see targets/openvino/precision_guard.py)
    keep_breaking_layers: bool = True

    def validate(self) -> None:
        super().validate()
        self.choose("model_type", MODEL_TYPES)
        self.choose("preset", PRESETS)
        self.at_least(1, "calib_samples")
        if self.activation_group_size is not None and self.activation_group_size < 0:
            raise BadInput(f"{self.target} activation_group_size={self.activation_group_size}; give 0 (float "
                           "activations) or a group of input channels, e.g. 128")
        if self.length_buckets and (not self.static_shapes or any(b < 2 for b in self.length_buckets)):
            raise BadInput(f"{self.target} length_buckets {list(self.length_buckets)}: give lengths of 2 or more "
                           "together with static_shapes=true")


class OpenVinoTarget(Target):
    selects_int8 = True  # convert(..., selector=...) chooses NNCF's settings per model (CLI: --select)

    def convert(self, model: Model | Any, out: str | Path, precision: str | None = None, calib: Any = None,
                selector: Selector | None = None, **options: Any) -> Model:
        """As :meth:`Target.convert`; ``selector`` (``check.selection.int8_selector``) judges the INT8
        candidates NNCF makes with different settings and names the one to keep."""
        from edgeship.targets.openvino.converter import convert

        return convert(model, Path(out), self.config(precision, **options), calib, selector)

    def placement(self, model: Model, device: str = "CPU", **_: Any) -> PlacementReport:
        """Each op of the model and the device the plugin's ``query_model`` gives it (unsupported: none)."""
        from edgeship.targets.openvino.offline import openvino

        ov = openvino()
        core = ov.Core()
        ov_model = core.read_model(str(model.path))
        supported = core.query_model(ov_model, device)
        rows = []
        for op in ov_model.get_ordered_ops():
            kind = op.get_type_name()
            if kind in ("Parameter", "Result", "Constant"):
                continue
            name = op.get_friendly_name()
            rows.append(OpPlacement(name, kind, supported.get(name, device), name in supported))
        return PlacementReport(self.name, str(model.path), rows, "query_model")


# Whatever imports openvino first in this process (a runner, the CPU probe, a cross-check), its
# telemetry is declined before (targets/openvino/offline.py): registration runs before any of them.
decline_telemetry()

register_target(OpenVinoTarget(
    "openvino", "edgeship.targets.openvino.runner:OpenVinoRunner", "edgeship.targets.openvino.converter:convert",
    OpenVinoTargetConfig, formats=("onnx", "openvino"), output_format="openvino", extra="openvino",
    modules=("openvino", "nncf"), report_name="openvino-cpu", suffix=".xml"))
