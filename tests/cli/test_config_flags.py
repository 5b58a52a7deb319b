"""Flags generated from config fields: names, types, choices, lists, nested settings, help from the
field descriptions, and the config built back — defaults, choices and help live in the config only."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from edgeship.cli.config_flags import ConfigFlags
from edgeship.core.config import Config, described
from edgeship.core.errors import BadInput, UsageError


@dataclasses.dataclass(frozen=True)
class Inner(Config):
    lr: float = described(1e-3, "the rate", metavar="LR")
    steps: int | None = described(None, "stop after N steps", metavar="N")


@dataclasses.dataclass(frozen=True)
class Outer(Config):
    kind: ClassVar[str] = "test-flags-outer"

    ratio: float = described(0.5, "how much goes")
    mode: Literal["a", "b"] = described("a", "which way")
    bits: Literal[8, 4] = described(8, "how many bits")
    heads: bool = described(True, "whole heads")
    keep: tuple[str, ...] = described((), "names kept", metavar="NAME")
    files: tuple[str, ...] = described((), "files read")
    path: Path | None = described(None, "where")
    time_budget_s: float = described(60.0, "seconds, 100% of them")
    train: Inner = dataclasses.field(default_factory=Inner)

    def validate(self) -> None:
        if not 0 < self.ratio < 1:
            raise BadInput(f"ratio {self.ratio} is out of range")


@dataclasses.dataclass(frozen=True)
class Other(Config):
    kind: ClassVar[str] = "test-flags-other"

    ratio: float = described(0.25, "how much goes")
    depth: int = described(2, "how deep")


def _parser(**options) -> tuple[argparse.ArgumentParser, ConfigFlags]:
    p = argparse.ArgumentParser(prog="t")
    flags = ConfigFlags(p, Outer, **{"names": {"time_budget_s": "time-budget", "train.steps": "max-steps"},
                                     "whole": ("files",), **options})
    return p, flags


def test_no_flag_builds_the_config_defaults():
    p, flags = _parser()
    assert flags.build(p.parse_args([])) == Outer()


def test_every_kind_of_field_becomes_a_flag():
    p, flags = _parser()
    args = p.parse_args(["--ratio", "0.25", "--mode", "b", "--bits", "4", "--no-heads", "--keep", "a,b", "--keep", "c",
                         "--files", "x,y.txt", "--path", "m.onnx", "--time-budget", "5", "--lr", "0.1",
                         "--max-steps", "7"])
    assert flags.build(args) == Outer(ratio=0.25, mode="b", bits=4, heads=False, keep=("a", "b", "c"),
                                      files=("x,y.txt",), path=Path("m.onnx"), time_budget_s=5.0,
                                      train=Inner(lr=0.1, steps=7))


@pytest.mark.parametrize("argv", [["--mode", "c"], ["--bits", "2"], ["--ratio", "much"], ["--time_budget_s", "5"]])
def test_values_outside_the_annotation_are_usage_errors(argv, capsys):
    p, _ = _parser()
    with pytest.raises(SystemExit) as exc:
        p.parse_args(argv)
    assert exc.value.code == 2
    assert "t: error:" in capsys.readouterr().err


def test_validation_stays_in_the_config():
    p, flags = _parser()
    with pytest.raises(BadInput, match="out of range"):
        flags.build(p.parse_args(["--ratio", "2"]))


def test_help_comes_from_the_field_descriptions_with_their_defaults():
    p, _ = _parser(titles={"train": "training"})
    text = p.format_help()
    for needle in ("how much goes (default 0.5)", "{a,b}", "{8,4}", "--heads, --no-heads", "whole heads (default on)",
                   "--keep NAME", "seconds, 100% of them (default 60)", "--lr LR", "the rate (default 0.001)",
                   "--max-steps N", "training:"):
        assert needle in " ".join(text.split()), needle
    assert "--steps" not in text and "--time-budget-s" not in text


def test_required_skip_and_aliases():
    p, flags = _parser(required=("ratio",), skip=("path",))
    p.add_argument("--whole-heads-off", dest=flags.dest_of("heads"), action="store_const", const=False)
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert "--path" not in p.format_help()
    built = flags.build(p.parse_args(["--ratio", "0.3", "--whole-heads-off"]))
    assert built.heads is False and built.ratio == 0.3


def test_flags_override_a_base_config_field_by_field():
    p, flags = _parser()
    base = Outer(ratio=0.1, keep=("x",), train=Inner(lr=0.5, steps=3))
    built = flags.build(p.parse_args(["--max-steps", "9"]), base)
    assert built == Outer(ratio=0.1, keep=("x",), train=Inner(lr=0.5, steps=9))  # lr kept from the base


def test_several_configs_share_flags_and_refuse_the_ones_they_lack():
    p = argparse.ArgumentParser(prog="t")
    flags = ConfigFlags(p, [Outer, Other], skip=("files", "path"),
                        not_applicable="{flag} does not apply to --method {kind}")
    text = " ".join(p.format_help().split())
    assert "how much goes (default 0.5 for test-flags-outer, 0.25 for test-flags-other)" in text
    assert "test-flags-other options: --depth N how deep (default 2)" in text
    args = p.parse_args(["--ratio", "0.4", "--depth", "3"])
    with pytest.raises(UsageError, match="--depth does not apply to --method test-flags-outer"):
        flags.build(args, Outer())
    assert flags.build(args, Other()) == Other(ratio=0.4, depth=3)
    with pytest.raises(ValueError, match="give the base config"):
        flags.build(args)


def test_a_field_without_a_flag_form_must_be_skipped():
    @dataclasses.dataclass(frozen=True)
    class Nested(Config):
        parts: tuple[Inner, ...] = ()

    with pytest.raises(TypeError, match="parts"):
        ConfigFlags(argparse.ArgumentParser(), Nested)
    ConfigFlags(argparse.ArgumentParser(), Nested, skip=("parts",))


def test_the_commands_defaults_are_the_configs_defaults():
    """Every compression and quantization flag set: no flag given builds exactly the config's defaults."""
    from edgeship.cli.main import build_parser
    from edgeship.compress.distill.config import DistillConfig
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.qat.config import QatConfig
    from edgeship.compress.quantize.configs import Int8StaticConfig, MixedConfig

    parser = build_parser()
    cases = [(["prune", "zoo:x", "--ratio", "0.5", "-o", "o.onnx"], PruneConfig(ratio=0.5)),
             (["distill", "--teacher", "zoo:x", "--student", "layers=3", "-o", "o.onnx"], DistillConfig()),
             (["qat", "zoo:x", "--data", "d.npz", "-o", "o.onnx"], QatConfig())]
    for argv, want in cases:
        args = parser.parse_args(argv)
        assert args.config_flags.build(args) == want, argv
    args = parser.parse_args(["quantize", "m.onnx", "-o", "o.onnx"])
    for cfg in (Int8StaticConfig(), MixedConfig()):
        assert args.config_flags.build(args, cfg) == cfg
    # the old flag names are kept beside the generated ones
    args = parser.parse_args(["prune", "zoo:x", "--ratio", "0.5", "--unstructured", "--head-dims", "--finetune-epochs",
                              "2", "-o", "o.onnx"])
    built = args.config_flags.build(args)
    assert (built.mode, built.heads, built.train.epochs) == ("unstructured", False, 2)
    args = parser.parse_args(["qat", "zoo:x", "--data", "d.npz", "--no-ptq", "--bits", "4", "-o", "o.onnx"])
    assert args.config_flags.build(args) == QatConfig(bits=4, compare_ptq=False)
