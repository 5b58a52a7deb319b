"""What a release needs of the device beyond its runtime — TensorRT's version and the GPU an engine
was built for — recorded at publish time in the signed metadata (``requirements``) and checked by
the agent before it downloads anything.

A TensorRT engine only deserializes on the TensorRT version that built it (major.minor) and runs on
GPUs of the compute capability it was built for. Each requirement is a name registered in
:data:`REQUIREMENTS` with how to read it here (publisher and device alike) and how to compare; a
release may carry any of them, and a device refuses a release whose requirement it cannot meet or
does not know.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
from collections.abc import Callable, Mapping

from edgeship.core.errors import BadInput


@dataclasses.dataclass(frozen=True)
class Requirement:
    what: str  # for messages: "TensorRT", "GPU compute capability"
    local: Callable[[], str | None]  # this machine's value, or None when it has none
    meets: Callable[[str, str], bool]  # (needed, here) -> ok


def _major_minor(v: str) -> tuple[str, ...]:
    return tuple(str(v).split(".")[:2])


@functools.cache
def local_tensorrt() -> str | None:
    from edgeship.core.registry import is_installed

    if not is_installed("tensorrt"):
        return None
    import tensorrt

    return str(tensorrt.__version__)


@functools.cache
def local_gpu() -> str | None:
    """The first NVIDIA GPU's compute capability as ``sm_89``, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"sm_{out[0].replace('.', '')}" if out else None


REQUIREMENTS: dict[str, Requirement] = {
    "tensorrt": Requirement("TensorRT", local_tensorrt, lambda need, here: _major_minor(need) == _major_minor(here)),
    "gpu": Requirement("GPU compute capability", local_gpu, lambda need, here: need == here),
}
ENGINE_REQUIREMENTS = ("tensorrt", "gpu")  # what a TensorRT engine must record


def parse_requirements(texts: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["tensorrt=10.3", "gpu=sm_89"]`` → ``{"tensorrt": "10.3", "gpu": "sm_89"}``."""
    out: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not value or name not in REQUIREMENTS:
            raise BadInput(f"--requires {text!r}: give NAME=VALUE with NAME one of {', '.join(REQUIREMENTS)}")
        out[name] = value
    return out


def engine_requirements(given: Mapping[str, str]) -> dict[str, str]:
    """A TensorRT engine's requirements: those given, the rest read on this machine (where the engine
    is usually built); one that is neither given nor readable here stops the publish."""
    out = dict(given)
    for name in ENGINE_REQUIREMENTS:
        if name not in out:
            here = REQUIREMENTS[name].local()
            if here is None:
                raise BadInput(f"a TensorRT engine runs only where its {REQUIREMENTS[name].what} matches; this "
                               f"machine has none to read: give --requires {name}=VALUE "
                               "(e.g. tensorrt=10.3, gpu=sm_89)")
            out[name] = here
    return out


def unmet(requirements: Mapping[str, str]) -> str | None:
    """Why this device cannot meet ``requirements`` (the first unmet, in :data:`REQUIREMENTS`' order), or None."""
    order = [n for n in REQUIREMENTS if n in requirements] + [n for n in requirements if n not in REQUIREMENTS]
    for name in order:
        need = requirements[name]
        req = REQUIREMENTS.get(name)
        if req is None:
            return f"needs {name}={need}, which this agent does not know"
        here = req.local()
        if here is None:
            return f"needs {req.what} {need}; this device has none"
        if not req.meets(str(need), here):
            return f"needs {req.what} {need}; this device has {here}"
    return None
