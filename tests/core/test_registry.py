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


def test_modules_are_imported_on_first_read(tmp_path, monkeypatch):
    """The modules named with a registry fill it when it is first read, not when it is created."""
    import sys

    (tmp_path / "es_plugin_for_test.py").write_text(
        "from tests_registry_holder import REG\nREG.add('plugged', 42)\n")
    (tmp_path / "tests_registry_holder.py").write_text(
        "from edgeship.core.registry import Registry\nREG = Registry('thing', modules=['es_plugin_for_test'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_holder

    assert "es_plugin_for_test" not in sys.modules
    assert tests_registry_holder.REG.get("plugged") == 42
    assert tests_registry_holder.REG.names() == ["plugged"]
    assert "es_plugin_for_test" in sys.modules


def test_type_registry_dispatches_on_the_class_and_its_bases():
    from edgeship.core.registry import TypeRegistry

    class Base: ...

    class Child(Base): ...

    class Own(Base): ...

    class Other: ...

    reg: TypeRegistry[str] = TypeRegistry("handler")
    reg.register(Base)("base")
    reg.add(Own, "own")
    with pytest.raises(ValueError, match="handler for Own is registered twice"):
        reg.add(Own, "again")
    assert reg.get(Child()) == "base" and reg.get(Own) == "own" and reg.get(Base()) == "base"
    with pytest.raises(BadInput, match="unknown handler for Other; known: Base, Own"):
        reg.get(Other())
    assert reg.types() == [Base, Own]
