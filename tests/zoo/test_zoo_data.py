"""The bundled data sets are registered through the edgeship.data entry points (one module each) and
share the fitting rules of edgeship.zoo.data."""

from __future__ import annotations

import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import data_sources
from edgeship.core.errors import BadInput
from edgeship.zoo import data as zdata


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


def test_sources_are_registered() -> None:
    sources = {s.name: s for s in data_sources()}
    assert {"images", "digits-calib", "digits-test", "digits-train", "sentences", "docstrings", "synthetic"} <= \
        set(sources)
    assert sources["sentences"].text and sources["docstrings"].text and not sources["digits-train"].text
    assert sources["images"].splits == ("calib", "select", "test") and sources["images"].default_split == "test"
    assert sources["sentences"].splits == ("calib", "select", "test") and sources["sentences"].default_split == "test"


def test_every_entry_point_module_registers_what_it_is_named_for() -> None:
    from importlib.metadata import entry_points

    modules = {ep.name: ep.value for ep in entry_points(group="edgeship.data")}
    assert modules == {"digits": "edgeship.zoo.digits", "docstrings": "edgeship.zoo.docstrings",
                       "images": "edgeship.zoo.images", "sentences": "edgeship.zoo.sentences"}
    by_module = {s.load.__module__ for s in data_sources()}
    assert set(modules.values()) <= by_module


def test_the_shared_fitting_rules() -> None:
    io = _io(("x", "float32", ("b", 4)))
    assert zdata.check_shapes(io, {"x": (1, 4)}) == {"x": (1, 4)}
    with pytest.raises(BadInput, match="--shape names y, not inputs of the model"):
        zdata.check_shapes(io, {"y": (1,)})
    assert zdata.check_split("s", None, ("a", "b"), "b") == "b"
    with pytest.raises(BadInput, match="data:s has no split 'c'; splits: a, b"):
        zdata.check_split("s", "c", ("a", "b"), "b")
    with pytest.raises(BadInput, match="data:t has no splits \\(got 'x'\\); use data:u"):
        zdata.no_split("t", "x", "use data:u")
    spec, shape = zdata.single_float_input("s", io, {}, "vector")
    assert spec.name == "x" and shape == ("b", 4)
    with pytest.raises(BadInput, match="gives float vectors"):
        zdata.single_float_input("s", _io(("x", "int64", (1,))), {}, "vector")
