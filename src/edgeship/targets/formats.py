"""Model file formats other than ONNX (ONNX registers itself in core/onnx_file.py).

A format that can be inspected here gets an ``inspect`` function; targets fill these in.
"""

from __future__ import annotations

from edgeship.core.artifact import register_format

register_format("tflite", (".tflite",))
register_format("pte", (".pte",))
register_format("mlpackage", (".mlpackage", ".mlmodel"))
register_format("engine", (".engine", ".plan"))
register_format("pt2", (".pt2",))
register_format("golden", (".npz",))
