"""What this machine's CPU can compute, read at run time: its feature flags, and whether it has
fp16 arithmetic (which decides whether an fp16 model can be faster than fp32 on the CPU).
"""

from __future__ import annotations

import functools
import platform
import subprocess

# Flags that mean native fp16 arithmetic: x86 AVX512-FP16 / AMX-FP16; Arm's half-precision SIMD
# (ARMv8.2-A FP16: "asimdhp" / "fphp" on Linux).
FP16_FLAGS = ("avx512_fp16", "amx_fp16", "asimdhp", "fphp")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo ``flags``/``Features``; on macOS the Arm features
    sysctl reports, as ``FEAT_*``); empty when the system does not say."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "hw.optional"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return frozenset()
        return frozenset(k.rsplit(".", 1)[-1] for k, _, v in (ln.partition(":") for ln in out.splitlines())
                         if v.strip() == "1")
    return frozenset()


def fp16_arithmetic() -> tuple[bool | None, str]:
    """(whether the CPU computes in fp16 natively — None when it cannot be told —, what says so)."""
    flags = cpu_flags()
    if not flags:
        return None, "the CPU's features cannot be read here"
    have = [f for f in (*FP16_FLAGS, "FEAT_FP16") if f in flags]
    if have:
        return True, f"the CPU has {', '.join(have)}"
    machine = platform.machine().lower()
    want = "AVX512-FP16" if machine in ("x86_64", "amd64", "i686") else "ARMv8.2 FP16 (asimdhp)"
    return False, f"the CPU has no fp16 arithmetic (no {want})"
