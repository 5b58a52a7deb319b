import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from edgeship.core.config import Config, config_kinds
from edgeship.core.errors import BadInput


@dataclasses.dataclass(frozen=True)
class Inner(Config):
    kind: ClassVar[str] = "test-inner"
    level: int = 1


@dataclasses.dataclass(frozen=True)
class Outer(Config):
    kind: ClassVar[str] = "test-outer"
    ratio: float = 0.5
    mode: Literal["a", "b"] = "a"
    names: tuple[str, ...] = ()
    path: Path | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)
    limit: int | None = None

    def validate(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise BadInput(f"ratio {self.ratio} must be within [0, 1]")


def test_round_trip_json_and_yaml():
    cfg = Outer(ratio=0.25, mode="b", names=("x", "y"), path=Path("/tmp/m.onnx"), inner=Inner(3), limit=7)
    assert Outer.from_json(cfg.to_json()) == cfg
    assert Outer.from_yaml(cfg.to_yaml()) == cfg
    assert cfg.to_dict()["kind"] == "test-outer"
    assert cfg.to_dict()["inner"] == {"kind": "test-inner", "level": 3}


def test_int_accepted_for_float_and_kind_dispatch():
    cfg = Config.from_dict({"kind": "test-outer", "ratio": 1})
    assert isinstance(cfg, Outer) and cfg.ratio == 1.0
    assert config_kinds()["test-inner"] is Inner


def test_validation_and_unknown_fields():
    with pytest.raises(BadInput, match=r"ratio 2\.0"):
        Outer(ratio=2.0)
    with pytest.raises(BadInput, match=r"unknown field.*colour"):
        Outer.from_dict({"colour": "red"})
    with pytest.raises(BadInput, match="not one of"):
        Outer.from_dict({"mode": "c"})
    with pytest.raises(BadInput, match="expected int"):
        Outer.from_dict({"limit": "many"})
    with pytest.raises(BadInput, match="unknown config kind"):
        Config.from_dict({"kind": "nope"})


def test_digest_is_stable_and_sensitive():
    assert Outer().digest() == Outer().digest()
    assert Outer().digest() != Outer(ratio=0.3).digest()


def test_load_reports_missing_and_bad_yaml(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        Outer.load(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ratio: [1,\n")
    with pytest.raises(BadInput, match="invalid YAML"):
        Outer.load(bad)


@dataclasses.dataclass(frozen=True)
class Choices(Config):
    bits: Literal[8, 4] = 8
    mode: Literal["a", "b"] | None = None


def test_literal_fields_are_checked_on_construction_without_a_validate():
    assert Choices(bits=4, mode="b").bits == 4 and Choices().mode is None
    with pytest.raises(BadInput, match=r"Choices\.bits=3 is not one of the choices; choose 8 or 4"):
        Choices(bits=3)
    with pytest.raises(BadInput, match=r"Choices\.mode='c' .*choose a or b"):
        Choices(mode="c")
    with pytest.raises(BadInput, match=r"Outer\.mode='c'"):  # the subclass's own validate() still runs after
        Outer(mode="c")


@dataclasses.dataclass(frozen=True)
class Moved(Config):
    kind: ClassVar[str] = "test-moved"
    inner: Inner = dataclasses.field(default_factory=Inner)

    @classmethod
    def upgrade_dict(cls, data):
        if "level" in data:  # an older layout kept `level` at the top
            data["inner"] = {**data.get("inner", {}), "level": data.pop("level")}
        return data


def test_upgrade_dict_moves_old_keys_also_when_loaded_through_the_base_class():
    assert Moved.from_dict({"level": 4}).inner.level == 4
    assert Config.from_dict({"kind": "test-moved", "level": 5}).inner == Inner(5)
    assert Moved().replace(level=6).inner.level == 6
