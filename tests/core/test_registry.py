import pytest

from edgeship.core.errors import BadInput, MissingDependency
from edgeship.core.registry import Registry, require


def test_duplicate_is_an_error_and_unknown_lists_known():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 2)
    with pytest.raises(BadInput, match="unknown widget 'b'; known: a"):
        reg.get("b")
    assert reg.get("a") == 1 and "a" in reg and reg.names() == ["a"]


def test_require_names_the_extra():
    with pytest.raises(MissingDependency, match=r"pip install 'edgeship\[tflite\]'") as exc:
        require("surely_not_a_module_xyz", "tflite")
    assert exc.value.exit_code == 2
    assert require("json", "core").dumps([1]) == "[1]"
