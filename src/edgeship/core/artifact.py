"""The ``Model`` handle: a frozen description of one model file and where it came from.

Every stage takes a Model and returns a new one; nothing mutates in place. What we know about a
file (its IO spec, its provenance chain and measured facts) lives in a JSON sidecar beside it,
``model.onnx`` → ``model.onnx.edgeship.json``. The sidecar records the file's sha256, so a sidecar
left beside a replaced file is recognised as stale and ignored.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core import atomic
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry

SIDECAR_SUFFIX = ".edgeship.json"

Dim = int | str | None  # fixed size, symbolic name, or unknown


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: float32, int64, ...
    shape: tuple[Dim, ...]

    @property
    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) for d in self.shape)

    def concrete(self, batch: int = 1, seq: int | None = None, fix: str | None = None) -> tuple[int, ...]:
        """The one rule that fills symbolic dims: a symbolic leading dim is the batch, a symbolic
        second dim is the sequence when ``seq`` is given; any other symbolic dim is a BadInput that
        says how to fix it (``fix``: the flag or option to name, default ``--shape``)."""
        dims: list[int] = []
        for axis, d in enumerate(self.shape):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif axis == 0:
                dims.append(batch)
            elif axis == 1 and seq is not None:
                dims.append(seq)
            else:
                example = ",".join(str(x) if isinstance(x, int) and x > 0 else "1" if i == 0 else "N"
                                   for i, x in enumerate(self.shape))
                how = fix or f"--shape {self.name}:{example}"
                raise BadInput(f"input {self.name!r} has symbolic dim {d!r} at axis {axis}; fix it with {how}")
        return tuple(dims)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(d["name"], d["dtype"], tuple(d["shape"]))

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


@dataclasses.dataclass(frozen=True)
class IOSpec:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise BadInput(f"model has no input {name!r}; inputs: {', '.join(t.name for t in self.inputs)}")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IOSpec:
        return cls(tuple(TensorSpec.from_dict(t) for t in d.get("inputs", [])),
                   tuple(TensorSpec.from_dict(t) for t in d.get("outputs", [])))


@dataclasses.dataclass(frozen=True)
class Step:
    """One link of the provenance chain: which stage made this file from what, with which config."""

    stage: str
    source: str
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# A format knows its file suffixes and how to read an IO spec from a file (registered per format;
# targets add theirs).
@dataclasses.dataclass(frozen=True)
class FormatInfo:
    name: str
    suffixes: tuple[str, ...]
    inspect: Callable[[Path], IOSpec] | None = None


# ONNX is core's own format; the targets add theirs through the "edgeship.formats" entry points.
# Both are imported on first use so start-up stays light.
FORMATS: Registry[FormatInfo] = Registry("model format", modules=["edgeship.core.onnx_file"],
                                         plugins="edgeship.formats")


def register_format(name: str, suffixes: tuple[str, ...],
                    inspect: Callable[[Path], IOSpec] | None = None) -> FormatInfo:
    return FORMATS.add(name, FormatInfo(name, suffixes, inspect))


def format_of(path: Path) -> str:
    name = path.name.lower()
    for fmt_name, info in FORMATS.items():
        if any(name.endswith(s) for s in info.suffixes):
            return fmt_name
    raise BadInput(f"{str(path)!r}: unknown model format; known suffixes: "
                   + ", ".join(s for _, i in FORMATS.items() for s in i.suffixes))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():  # bundles such as .mlpackage
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                h.update(file_sha256(p).encode())
        return h.hexdigest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    size = path.stat().st_size
    data = path.with_name(path.name + ".data")  # ONNX external data, if any
    if path.suffix == ".xml":  # OpenVINO IR keeps its weights beside it in .bin
        data = path.with_suffix(".bin")
    return size + (data.stat().st_size if data.exists() else 0)


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class Model:
    path: Path
    format: str
    io: IOSpec
    provenance: tuple[Step, ...] = ()
    facts: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Model:
        """Open a model file, reading its sidecar when it describes this very file."""
        p = Path(path)
        if not p.exists():
            raise BadInput(f"model file {str(p)!r} not found; check the path")
        fmt = format_of(p)
        info = FORMATS.get(fmt)
        sidecar = sidecar_path(p)
        if sidecar.is_file():
            try:
                meta = json.loads(sidecar.read_text())
                if meta.get("sha256") == file_sha256(p):
                    return cls._from_meta(p, meta)
            except (json.JSONDecodeError, KeyError, TypeError):
                pass  # a broken sidecar is ignored; the file itself is the truth
        if info.inspect is None:
            raise BadInput(f"{str(p)!r}: cannot read the inputs and outputs of a {fmt} file here")
        return cls(p, fmt, info.inspect(p))

    @classmethod
    def _from_meta(cls, p: Path, meta: dict[str, Any]) -> Model:
        return cls(p, meta["format"], IOSpec.from_dict(meta["io"]),
                   tuple(Step(**s) for s in meta.get("provenance", [])), dict(meta.get("facts", {})))

    # -- deriving ----------------------------------------------------------------------------
    def derive(self, path: str | Path, stage: str, config: dict[str, Any] | None = None,
               fmt: str | None = None, io: IOSpec | None = None, facts: dict[str, Any] | None = None) -> Model:
        """A new Model made from this one by ``stage``; provenance grows by one step."""
        p = Path(path)
        step = Step(stage=stage, source=str(self.path), config=config or {}, at=now())
        return Model(p, fmt or format_of(p), io or self.io, (*self.provenance, step), dict(facts or {}))

    def with_facts(self, **facts: Any) -> Model:
        return dataclasses.replace(self, facts={**self.facts, **facts})

    @property
    def size_bytes(self) -> int:
        return path_size(self.path)

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    # -- sidecar -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "io": self.io.to_dict(),
                "provenance": [s.to_dict() for s in self.provenance], "facts": self.facts}

    def save(self) -> Model:
        """Write the sidecar (atomically) and return self."""
        meta = {**self.to_dict(), "sha256": self.sha256, "size_bytes": self.size_bytes}
        meta["path"] = self.path.name
        atomic.write_json(sidecar_path(self.path), meta)
        return self


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)
