"""Reading and validating ONNX files, with one-line errors for everything a user can get wrong."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.core.artifact import IOSpec, TensorSpec, register_format
from edgeship.core.errors import BadInput

if TYPE_CHECKING:
    from onnx import ModelProto, TypeProto


def _dims(type_proto: TypeProto) -> tuple[int | str | None, ...]:
    """A value's dims: sizes, symbolic names, and None for "any size" — a dim with neither, or with a
    value of -1 (or 0), which other frameworks' exporters (Caffe2, TF2ONNX, Keras) write for it."""
    if not type_proto.tensor_type.HasField("shape"):
        return ()
    out: list[int | str | None] = []
    for d in type_proto.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value) if d.dim_value > 0 else None)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def _np_dtype(elem_type: int) -> str:
    import onnx.helper

    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError):
        return f"onnx:{elem_type}"


def io_spec(model: ModelProto) -> IOSpec:
    """IO spec of an ``onnx.ModelProto``; initializers listed as inputs are not inputs."""
    inits = {i.name for i in model.graph.initializer}
    ins = tuple(TensorSpec(v.name, _np_dtype(v.type.tensor_type.elem_type), _dims(v.type))
                for v in model.graph.input if v.name not in inits)
    outs = tuple(TensorSpec(v.name, _np_dtype(v.type.tensor_type.elem_type), _dims(v.type))
                 for v in model.graph.output)
    return IOSpec(ins, outs)


def load(path: str | Path, load_weights: bool = True, check: bool = True) -> ModelProto:
    """Load an ONNX file, refusing missing, non-ONNX, truncated and invalid files with one line each."""
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"model file {str(p)!r} not found; check the path")
    if p.stat().st_size == 0:
        raise BadInput(f"{str(p)!r} is empty; re-export the model")
    head = p.read_bytes()[:16]
    if head.startswith(b"PK") or head[:2] in (b"\x80\x02", b"\x80\x04", b"\x80\x05"):
        raise BadInput(f"{str(p)!r} is a PyTorch/pickle checkpoint, not ONNX; export it first: edgeship export")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise BadInput(f"{str(p)!r} is not a readable ONNX file (truncated or another format: "
                       f"{type(exc).__name__}); re-export or re-download it") from None
    if not model.graph.node and not model.graph.output:
        raise BadInput(f"{str(p)!r} is not an ONNX model (no graph); check the file")
    _check_external_data(model, p)
    if load_weights:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(p.parent))
        except (OSError, ValueError) as exc:
            raise BadInput(f"{str(p)!r}: its external weight data cannot be read ({exc}); "
                           "keep the .onnx.data file beside the model") from None
    if check:
        try:
            onnx.checker.check_model(model if load_weights else str(p))
        except onnx.checker.ValidationError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid graph"
            raise BadInput(f"{str(p)!r} fails the ONNX checker: {first}; fix or re-export the model") from None
    return model


def external_data_locations(model: ModelProto) -> list[str]:
    """The distinct external-data locations of every tensor (initializers, Constant attributes,
    subgraphs), as written in the model: relative to its folder unless the file is hostile."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return sorted({next((e.value for e in t.external_data if e.key == "location"), "")
                   for t in _get_all_tensors(model) if uses_external_data(t)})


def _check_external_data(model: ModelProto, path: Path) -> None:
    """No path traversal through external data: every location stays inside the model's folder."""
    base = path.parent.resolve()
    for loc in external_data_locations(model):
        target = (base / loc).resolve()
        if Path(loc).is_absolute() or not target.is_relative_to(base):
            raise BadInput(f"{str(path)!r}: external data {loc!r} points outside the model's folder; "
                           "refusing to read it")


def with_fixed_dims(model: ModelProto, shapes: dict[str, tuple[int, ...] | list[int]]) -> ModelProto:
    """A copy of ``model`` whose inputs named in ``shapes`` have those sizes (``--shape``): symbolic
    dims (named, -1, unknown) take the given size; a fixed dim must already be that size."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    inputs = {v.name: v for v in out.graph.input}
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        names = ", ".join(io_spec(model).input_names)
        raise BadInput(f"--shape names {', '.join(unknown)}, not inputs of the model ({names})")
    for name, dims in shapes.items():
        value = inputs[name]
        have = _dims(value.type)
        if have and len(have) != len(dims):
            raise BadInput(f"--shape {name}: {len(dims)} dims given, the model's input has {len(have)} "
                           f"[{','.join('?' if d is None else str(d) for d in have)}]")
        for axis, (old, new) in enumerate(zip(have or (None,) * len(dims), dims, strict=True)):
            if isinstance(old, int) and old != int(new):
                raise BadInput(f"--shape {name}: axis {axis} is fixed to {old} in the model, not {new}")
        shape = value.type.tensor_type.shape
        shape.ClearField("dim")
        for d in dims:
            shape.dim.add().dim_value = int(d)
    return out


def inspect(path: Path) -> IOSpec:
    return io_spec(load(path, load_weights=False, check=False))


def write(model: ModelProto, path: str | Path, data_name: str | None = None) -> Path:
    """Write one file (weights inline) when under 2 GB; above, weights go to ``data_name`` (default
    ``NAME.data``) beside it (protobuf's limit). Not atomic: :func:`save` is, or write to a temporary path."""
    import onnx

    out = Path(path)
    if model.ByteSize() < 2**31 - 1:
        onnx.save_model(model, str(out))
    else:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)  # saving as external data rewrites the tensors of the proto it is given
        onnx.save_model(copy, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name or out.name + ".data")
    return out


def save(model: ModelProto, path: str | Path) -> Path:
    """Save as one file (weights inline) when under 2 GB, atomically."""
    from edgeship.core import atomic

    out = Path(path)
    with atomic.atomic_path(out) as tmp:
        write(model, tmp, data_name=out.name + ".data")
    return out


register_format("onnx", (".onnx",), inspect)
