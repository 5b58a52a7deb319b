"""Layers a lower precision cannot hold, found by running the model in f32 on sample inputs.

Measured on a randomly initialised Hugging Face MobileNetV2 (tiny weights, as ``from_config`` makes
them): its activations shrink layer after layer to ~1e-24 at the logits. Both OpenVINO variants then
output exact zeros (cosine 0) while ONNX Runtime's INT8 of the same graph kept cosine 0.9997:

- **fp16**: every activation under fp16's smallest subnormal (6e-8) rounds to zero. OpenVINO's CPU
  plugin enforces the f16 inference precision on every node (it ignores the ``disable_fp16_compression``
  mark, measured with 2026.4), so the model keeps its fp16 weights and runs in f32 instead;
- **int8** (NNCF): a symmetric quantizer's range is at least 8e-5 (``fix_zero_filters_symmetric``), so
  an activation whose largest value is far below that lands in the zero bin; the layers fed by such
  activations are left out of quantization (NNCF's ignored scope) and stay in f32.

Activations above fp16's largest value (65504) overflow to Inf, with the same remedy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 6.103515625e-05  # below it fp16 keeps fewer bits; below 6e-8 nothing
NNCF_MIN_RANGE = 8e-5  # nncf.quantization.fake_quantize.fix_zero_filters_symmetric's floor
# an activation peaking below this uses fewer than 8 of the quantizer's 127 levels at that floor
NNCF_IGNORE_BELOW = NNCF_MIN_RANGE * 8 / 127
INT8_IGNORED_WHY = (f"their inputs peak below {NNCF_IGNORE_BELOW:.2g}, under 8 levels of NNCF's smallest "
                    f"quantization range ({NNCF_MIN_RANGE:g}); quantized they would be zero")
SAMPLES = 8  # sample inputs run to measure the activations
_NOT_LAYERS = ("Parameter", "Constant", "Result")


@dataclasses.dataclass(frozen=True)
class Extremes:
    """The largest |value| each layer output reached over the sample inputs, by (op name, port)."""

    peaks: dict[tuple[str, int], float]

    def below(self, limit: float) -> list[tuple[str, int]]:
        return [k for k, v in self.peaks.items() if 0.0 < v < limit]

    def above(self, limit: float) -> list[tuple[str, int]]:
        return [k for k, v in self.peaks.items() if v > limit or not np.isfinite(v)]


def measure(core: Any, ov_model: Any, rows: list[dict[str, np.ndarray]]) -> Extremes:
    """Run a copy of ``ov_model`` exposing every float layer output, in f32, on up to SAMPLES rows."""
    clone = ov_model.clone()
    outputs = [out for op in clone.get_ordered_ops() if op.get_type_name() not in _NOT_LAYERS
               for out in op.outputs() if out.get_element_type().is_real()]
    if not outputs:
        return Extremes({})
    clone.add_outputs(outputs)  # outputs already among the model's are not added twice
    # each model output is a Result node's; the layer it shows is what feeds that Result
    ports = [(src.get_node().get_friendly_name(), src.get_index())
             for src in (out.get_node().input_value(0) for out in clone.outputs)]
    compiled = core.compile_model(clone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]
    peaks = dict.fromkeys(ports, 0.0)
    for row in rows[:SAMPLES]:
        request.infer({n: np.asarray(row[n], order="C") for n in names})
        for k, key in enumerate(ports):
            data = np.asarray(request.get_output_tensor(k).data, dtype=np.float64)
            if data.size:
                peaks[key] = max(peaks[key], float(np.abs(data).max()))
    return Extremes(peaks)


def fp16_breaks(core: Any, ov_model: Any, rows: list[dict[str, np.ndarray]], ext: Extremes) -> str:
    """Why this model cannot run at the f16 precision hint ("" when it can): its outputs at f16 on the
    sample rows are broken (NaN/Inf, or zeros where f32 has values), and which layers' activations
    fall outside fp16's range. Values outside the range that do not break the outputs (attention masks
    of -3.4e38, which OpenVINO keeps exact) are no reason."""
    from edgeship.core.broken import broken

    f32, f16 = (_run(core, ov_model, rows, hint) for hint in ("f32", "f16"))
    what = [f"{name}: {why}" for name in f32 if (why := broken(f16[name], f32[name]))]
    if not what:
        return ""
    return f"at f16 output {'; '.join(what)}" + (f"; {reason}" if (reason := _outside_fp16(ext)) else "")


def _run(core: Any, ov_model: Any, rows: list[dict[str, np.ndarray]], hint: str) -> dict[str, list[np.ndarray]]:
    compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]
    outs: dict[str, list[np.ndarray]] = {o.get_any_name(): [] for o in compiled.outputs}
    for row in rows[:SAMPLES]:
        request.infer({n: np.asarray(row[n], order="C") for n in names})
        for k, name in enumerate(outs):
            outs[name].append(np.array(request.get_output_tensor(k).data))
    return outs


def _outside_fp16(ext: Extremes) -> str:
    small, big = ext.below(FP16_MIN_NORMAL), ext.above(FP16_MAX)
    parts = []
    if big:
        parts.append(f"{len(big)} of {len(ext.peaks)} layer outputs overflow fp16 (largest "
                     f"{max(ext.peaks[k] for k in big):.3g} > {FP16_MAX:g})")
    if small:
        parts.append(f"{len(small)} of {len(ext.peaks)} layer outputs lie below fp16's normal range (smallest peak "
                     f"{min(ext.peaks[k] for k in small):.3g} < {FP16_MIN_NORMAL:.3g})")
    return "; ".join(parts)


def int8_ignored(ov_model: Any, ext: Extremes) -> list[str]:
    """The ops whose activation inputs peak so far below NNCF's smallest quantization range that they
    would use fewer than 8 levels of it (left in f32)."""
    tiny = set(ext.below(NNCF_IGNORE_BELOW))
    if not tiny:
        return []
    names = []
    for op in ov_model.get_ordered_ops():
        for value in op.input_values():
            src = value.get_node()
            if (src.get_friendly_name(), value.get_index()) in tiny:
                names.append(op.get_friendly_name())
                break
    return names
