"""The LiteRT runner (ai-edge-litert): ONNX-layout arrays in and out, quantized I/O handled.

The helpers here are shared with the TFLite Micro runner: both run .tflite files whose sidecar maps
each ONNX input and output to a tensor of the file (``facts["tflite"]``: index and layout
permutation), and both quantize float feeds for integer inputs and dequantize integer outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.base import Feeds, Runner
from edgeship.targets.util import inverse_perm

IoMap = dict[str, list[dict[str, Any]]]


def io_map_of(model: Model, file_inputs: list[str], file_outputs: list[str]) -> IoMap:
    """The sidecar's tensor map, or without one the file's tensors by position, named after the model's
    IO spec (the file's own names where the spec has fewer), with no transposes."""
    if model.facts.get("tflite"):
        return model.facts["tflite"]

    def entries(names: list[str], in_file: list[str]) -> list[dict[str, Any]]:
        return [{"name": names[i] if i < len(names) else n, "index": i, "perm": None} for i, n in enumerate(in_file)]

    return {"inputs": entries(model.io.input_names, file_inputs),
            "outputs": entries(model.io.output_names, file_outputs)}


def file_layout_inputs(runner: Runner, io_map: IoMap, feeds: Feeds) -> list[tuple[int, np.ndarray]]:
    """(tensor index in the file, array in the file's layout) for each input of ``io_map``, in order."""
    arrays = runner.inputs_in_order(feeds, [m["name"] for m in io_map["inputs"]])
    return [(m["index"], x.transpose(m["perm"]) if m.get("perm") else x) for m, x in zip(io_map["inputs"], arrays)]


def onnx_layout(entry: dict[str, Any], y: np.ndarray) -> np.ndarray:
    """An output back in the ONNX model's layout."""
    return y.transpose(inverse_perm(tuple(entry["perm"]))) if entry.get("perm") else y


def quantize(x: np.ndarray, dtype: Any, scale: float, zero: int) -> np.ndarray:
    if scale == 0:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    if scale == 0 or x.dtype.kind == "f":
        return x
    return ((x.astype(np.float32) - zero) * scale).astype(np.float32)


class TfliteRunner(Runner):
    runtime: ClassVar[str] = "litert"

    def _build(self) -> Any:
        interp = require("ai_edge_litert.interpreter", "tflite", "ai-edge-litert")
        try:
            it = interp.Interpreter(model_path=str(self.model.path), num_threads=self.threads or None)
        except (ValueError, RuntimeError) as exc:
            raise BadInput(f"LiteRT cannot load {str(self.model.path)!r}: {str(exc).splitlines()[0][:300]}") from None
        try:
            it.allocate_tensors()
        except RuntimeError as exc:  # ops this interpreter lacks (Select TF "Flex" ops), failed preparation
            raise BadInput(f"LiteRT cannot run {self.model.path.name}: {_first_sentence(exc)}") from None
        ins, outs = it.get_input_details(), it.get_output_details()
        io_map = io_map_of(self.model, [d["name"] for d in ins], [d["name"] for d in outs])
        # programs exported with a fixed batch of 1 (litert-torch) take one row at a time
        batch_one = all(int(d.get("shape_signature", d["shape"])[0]) == 1 for d in ins if len(d["shape"]))
        return {"it": it, "ins": ins, "outs": outs, "map": io_map, "batch_one": batch_one}

    def _one_row_at_a_time(self, session: Any) -> bool:
        return bool(session["batch_one"])

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        padded = self.model.facts.get("padded_sequence")
        if padded:  # a text program of fixed length: pad (masked out), run, cut the outputs back
            from edgeship.targets.tflite.converter import pad_sequence

            length = next(iter(feeds[n].shape[1] for n in padded["inputs"] if n in feeds), None)
            out = self._infer_file(session, pad_sequence(feeds, padded))
            return {k: (v[:, :length] if k in padded["outputs"] and length else v) for k, v in out.items()}
        return self._infer_file(session, feeds)

    def _infer_file(self, session: Any, feeds: Feeds) -> Feeds:
        it, ins, outs, io_map = session["it"], session["ins"], session["outs"], session["map"]
        arrays = [(ins[index], x) for index, x in file_layout_inputs(self, io_map, feeds)]
        current = {d["index"]: tuple(d["shape"]) for d in it.get_input_details()}
        # same values, other unit dims (a scalar the converter made [1]): reshaped, not resized
        arrays = [(d, x.reshape(current[d["index"]]) if _unit_dims_apart(current[d["index"]], x.shape) else x)
                  for d, x in arrays]
        resized = [(d, x) for d, x in arrays if current[d["index"]] != x.shape]
        for d, x in resized:
            try:
                it.resize_tensor_input(d["index"], list(x.shape), strict=True)
            except (ValueError, RuntimeError) as exc:
                raise BadInput(f"{self.model.path.name}: input {d['name']!r} takes shape {list(d['shape'])}, "
                               f"got {list(x.shape)} ({str(exc).splitlines()[0][:120]})") from None
        if resized:
            it.allocate_tensors()
        for d, x in arrays:
            dtype = np.dtype(d["dtype"])
            scale, zero = d["quantization"]
            x = quantize(x, dtype, scale, zero) if dtype.kind in "iu" and x.dtype.kind == "f" else x.astype(dtype)
            it.set_tensor(d["index"], np.asarray(x, order="C"))
        it.invoke()
        result: Feeds = {}
        for m in io_map["outputs"]:
            d = outs[m["index"]]
            result[m["name"]] = onnx_layout(m, dequantize(np.array(it.get_tensor(d["index"])), *d["quantization"]))
        return result


def _first_sentence(exc: BaseException) -> str:
    """LiteRT's errors run several sentences and a URL into one line: the first sentence and the op."""
    text = " ".join(str(exc).split())
    first = text.split(". ")[0]
    node = text[text.find("Node number"):].split(" failed")[0] if "Node number" in text else ""
    return f"{first}{' (' + node + ')' if node else ''}"[:300]


def _unit_dims_apart(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Two different shapes that differ only by dims of size 1 (``()`` and ``(1,)``)."""
    return tuple(a) != tuple(b) and tuple(d for d in a if d != 1) == tuple(d for d in b if d != 1)
