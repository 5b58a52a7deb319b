"""A system fingerprint for benchmark results: CPU model and flags, cores, memory, library versions,
the CPU frequency governor; and the machine's load while timing, which is a condition, not identity.

``fingerprint`` hashes what decides how fast a model can run here (CPU, flags, cores, memory, OS,
Python, library versions, governor); two results compare fairly only when it is the same.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
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


# The system_info() keys that make up the fingerprint (not the load: it says when, not where).
FINGERPRINT_KEYS = ("cpu", "flags", "logical_cores", "usable_cores", "memory_gib", "os", "python", "versions",
                    "governor")


def governor() -> str:
    """The CPU frequency governor (``performance``, ``powersave``, ...) or why it is not known."""
    names = set()
    for f in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            names.add(f.read_text().strip())
        except OSError:
            continue
    if not names:
        return "not exposed (no cpufreq: a VM or a fixed clock)"
    return "/".join(sorted(names))


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def fingerprint(info: dict[str, Any]) -> str:
    """A short hash of the parts of ``info`` that decide speed (FINGERPRINT_KEYS)."""
    text = json.dumps({k: info.get(k) for k in FINGERPRINT_KEYS}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two system_info() dicts, one phrase per key (library versions one by one)."""
    out = []
    for key in FINGERPRINT_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "versions" and isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{lib} {va.get(lib, 'absent')} → {vb.get(lib, 'absent')}" for lib in sorted(set(va) | set(vb))
                    if va.get(lib) != vb.get(lib)]
        elif va != vb:
            out.append(f"{key} {va} → {vb}")
    return out


def timing_conditions() -> dict[str, Any]:
    """The system fingerprint plus what the machine was doing now (load averages)."""
    return {**system_info(), "load_avg": load_average()}


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
    info = {
        "cpu": cpu or platform.machine(),
        "flags": sorted(f for f in INTERESTING_FLAGS if f in flags),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "governor": governor(),
    }
    info["fingerprint"] = fingerprint(info)
    return info
