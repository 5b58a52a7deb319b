"""Model file formats other than ONNX (ONNX registers itself in core/onnx_file.py).

A format that can be inspected here gets an ``inspect`` function: it reads the file's own inputs and
outputs (names, dtypes, shapes as the runtime sees them) with the runtime's reader, imported lazily.
A converted file's sidecar keeps the ONNX-side IO spec instead; these readers serve files without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import IOSpec, TensorSpec, register_format
from edgeship.core.errors import BadInput
from edgeship.core.registry import require


def _np_name(dtype: Any) -> str:
    import numpy as np

    return str(np.dtype(dtype))


def inspect_tflite(path: Path) -> IOSpec:
    """Inputs and outputs of a .tflite flatbuffer (dynamic dims from the shape signature are None)."""
    interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
    try:
        it = interp.Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable .tflite file ({str(exc).splitlines()[0][:200]})") from None

    def spec(d: dict[str, Any]) -> TensorSpec:
        sig = d.get("shape_signature", d["shape"])
        return TensorSpec(d["name"], _np_name(d["dtype"]), tuple(None if int(x) < 0 else int(x) for x in sig))

    return IOSpec(tuple(spec(d) for d in it.get_input_details()), tuple(spec(d) for d in it.get_output_details()))


# ExecuTorch ScalarType, by name or by its code (what the runtime's TensorInfo gives back)
_ET_DTYPES = {"Float": "float32", "Half": "float16", "Long": "int64", "Int": "int32", "Char": "int8",
              "Byte": "uint8", "Bool": "bool", "Double": "float64", "BFloat16": "bfloat16",
              "6": "float32", "5": "float16", "4": "int64", "3": "int32", "1": "int8", "0": "uint8", "11": "bool",
              "7": "float64", "15": "bfloat16"}


def inspect_pte(path: Path) -> IOSpec:
    """Inputs and outputs of the ``forward`` method of an ExecuTorch program (names are positional)."""
    rt = require("executorch.runtime", "executorch", "executorch")
    try:
        meta = rt.Runtime.get().load_program(str(path)).metadata("forward")
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise BadInput(f"{str(path)!r} is not a loadable ExecuTorch program ({first})") from None

    def spec(name: str, info: Any) -> TensorSpec:
        dtype = str(info.dtype()).rsplit(".", 1)[-1]
        return TensorSpec(name, _ET_DTYPES.get(dtype, dtype.lower()), tuple(int(s) for s in info.sizes()))

    return IOSpec(tuple(spec(f"input_{i}", meta.input_tensor_meta(i)) for i in range(meta.num_inputs())),
                  tuple(spec(f"output_{i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())))


_ML_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64", 131080: "int8"}


def inspect_mlpackage(path: Path) -> IOSpec:
    """Inputs and outputs from a Core ML model's spec (works on Linux: no prediction needed)."""
    spec = mlmodel_spec(path)

    def tensor(feature: Any) -> TensorSpec:
        arr = feature.type.multiArrayType
        shape: tuple[int | None, ...] = tuple(int(d) for d in arr.shape)
        if arr.WhichOneof("ShapeFlexibility") == "shapeRange":
            shape = tuple(int(r.lowerBound) if r.lowerBound == r.upperBound else None
                          for r in arr.shapeRange.sizeRanges)
        return TensorSpec(feature.name, _ML_DTYPES.get(int(arr.dataType), f"coreml:{arr.dataType}"), shape)

    return IOSpec(tuple(tensor(f) for f in spec.description.input), tuple(tensor(f) for f in spec.description.output))


def mlmodel_spec(path: Path) -> Any:
    ct = require("coremltools", "coreml", "coremltools")
    try:
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as exc:  # coremltools raises plain Exceptions for unreadable packages
        raise BadInput(f"{str(path)!r} is not a readable Core ML model ({str(exc).splitlines()[0][:200]})") from None


def inspect_engine(path: Path) -> IOSpec:
    """Inputs and outputs of a serialized TensorRT engine (needs TensorRT and its GPU)."""
    from edgeship.targets.tensorrt.runner import engine_io

    return engine_io(path)


def inspect_openvino(path: Path) -> IOSpec:
    from edgeship.targets.openvino.offline import openvino

    ov = openvino()
    try:
        m = ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise BadInput(f"{str(path)!r} is not readable OpenVINO IR ({str(exc).splitlines()[0][:200]})") from None

    def spec(port: Any) -> TensorSpec:
        shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        return TensorSpec(port.get_any_name(), port.get_element_type().to_dtype().name, shape)

    return IOSpec(tuple(spec(p) for p in m.inputs), tuple(spec(p) for p in m.outputs))


register_format("tflite", (".tflite",), inspect_tflite)
register_format("pte", (".pte",), inspect_pte)
register_format("mlpackage", (".mlpackage", ".mlmodel"), inspect_mlpackage)
register_format("engine", (".engine", ".plan"), inspect_engine)
register_format("openvino", (".xml",), inspect_openvino)
register_format("pt2", (".pt2",))
register_format("golden", (".npz",))
