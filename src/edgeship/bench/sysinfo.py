"""A system fingerprint for benchmark results: CPU model and flags, cores, memory, library versions."""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from typing import Any

# Flags that change what kernels runtimes pick on x86 and Arm.
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                     "amx_int8", "amx_bf16", "avx_vnni", "asimd", "asimddp", "sve", "i8mm", "bf16")
PACKAGES = ("edgeship", "numpy", "onnx", "onnxruntime", "torch", "openvino", "tensorflow", "ai-edge-litert",
            "executorch", "coremltools", "tflite-micro")


def busy_note() -> str | None:
    """A warning when other work was keeping the cores busy: timings taken then are inflated, and
    eager PyTorch with OpenMP threads suffers far more than runtimes with their own thread pools."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load > 0.75 * cores:
        return (f"the machine was busy (1-minute load average {load:.1f} on {cores} cores) while timing; "
                "latencies are inflated, PyTorch eager most of all: rerun on a quiet machine to quote them")
    return None


@functools.lru_cache(maxsize=1)
def system_info() -> dict[str, Any]:
    cpu, flags = platform.processor() or "", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if (key in ("model name", "Model") and not cpu) or key in ("model name",):
                    cpu = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                if cpu and flags:
                    break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gib = None
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu or platform.machine(),
        "flags": sorted(f for f in INTERESTING_FLAGS if f in flags),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }
