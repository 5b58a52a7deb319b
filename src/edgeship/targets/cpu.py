"""What this CPU can do fast, read at run time: the instruction sets behind each precision.

The same machine kind comes with different CPUs (an AMD EPYC with AVX-512 VNNI and BF16 but no
AMX one day, an Intel Xeon with AMX the next), and which precision pays depends on them: INT8 is
fast with AMX-INT8 or VNNI dot products, bf16 with AMX-BF16 or AVX512-BF16, fp16 arithmetic only
with AVX512-FP16 (elsewhere it is converted to f32 and is slower than f32). The flags come from
``/proc/cpuinfo`` (Linux); OpenVINO's own view is its CPU plugin's ``OPTIMIZATION_CAPABILITIES``.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
from pathlib import Path
from typing import Any

# /proc/cpuinfo flag → the name people use, in order of preference within a precision
PRECISION_INSTRUCTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "int8": (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI")),
    "bf16": (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16")),
    "fp16": (("amx_fp16", "AMX-FP16"), ("avx512_fp16", "AVX512-FP16")),
    "fp32": (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("fma", "FMA")),
}
# precisions named by variants and targets → the arithmetic they run in
ARITHMETIC = {"int8": "int8", "int8-dynamic": "int8", "int8-static": "int8", "mixed": "int8", "int4": "int8",
              "as-built": "int8",  # OpenVINO running a QDQ file: its quantized ops in INT8
              "int8-weight": "int8",  # OpenVINO quantizes the activations of INT8-weight layers at run time
              "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}
WITHOUT = {"int8": "no VNNI or AMX: INT8 dot products run as AVX2/AVX-512 multiply-adds",
           "bf16": "no BF16 instructions: bf16 is converted to f32",
           "fp16": "no FP16 arithmetic: fp16 is converted to f32 (slower than f32)",
           "fp32": "no AVX2: plain SSE"}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]

    def instructions(self, precision: str) -> list[str]:
        """The instruction sets this CPU has for ``precision``'s arithmetic, best first (empty: none)."""
        arithmetic = ARITHMETIC.get(precision, precision)
        return [name for flag, name in PRECISION_INSTRUCTIONS.get(arithmetic, ()) if flag in self.flags]

    def describe(self, precision: str) -> str:
        found = self.instructions(precision)
        return ", ".join(found) if found else WITHOUT.get(ARITHMETIC.get(precision, precision), "")

    def to_dict(self) -> dict[str, Any]:
        names = sorted({name for pairs in PRECISION_INSTRUCTIONS.values() for flag, name in pairs
                        if flag in self.flags})
        return {"model": self.model, "instructions": names,
                "by_precision": {p: self.instructions(p) for p in PRECISION_INSTRUCTIONS}}


def parse_cpuinfo(text: str) -> CpuInfo:
    """The CPU model and flags of ``/proc/cpuinfo``'s first processor."""
    model, flags = platform.processor() or platform.machine(), frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags)


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (read once per process)."""
    path = Path("/proc/cpuinfo")
    try:
        return parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        return CpuInfo(platform.processor() or platform.machine(), frozenset())


@functools.lru_cache(maxsize=1)
def openvino_capabilities() -> tuple[str, ...] | None:
    """OpenVINO's CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (FP32, BF16, FP16, INT8, ...), or None
    without OpenVINO."""
    try:
        import openvino as ov
    except ImportError:
        return None
    try:
        return tuple(str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except RuntimeError:
        return None
