"""What the targets share (targets/base.py): a target described by data, its typed config built and
checked once, the registry, runners' feeds in order and row-by-row programs, placement refused by default."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, Model, TensorSpec
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.targets.base import (
    TARGETS,
    Availability,
    Feeds,
    Runner,
    Target,
    TargetConfig,
    all_targets,
    get_target,
    load_ref,
    register_target,
    runner_for,
)

IO = IOSpec((TensorSpec("a", "float32", ("batch", 2)), TensorSpec("b", "float32", ("batch", 2))),
            (TensorSpec("y", "float32", ("batch", 2)),))


@dataclasses.dataclass(frozen=True)
class ToyConfig(TargetConfig):
    kind: ClassVar[str] = "target-toy"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    calib_samples: int = 10
    mode: str = "fast"
    shapes: dict[str, list[int]] | None = None

    def validate(self) -> None:
        super().validate()
        self.choose("mode", ("fast", "exact", None))
        self.at_least(1, "calib_samples")


class SumRunner(Runner):
    """a + b, recording the batch size of every call; a fixed batch of 1 when the model says so."""

    runtime: ClassVar[str] = "toy"

    def _build(self) -> list[int]:
        return []

    def _one_row_at_a_time(self, session: Any) -> bool:
        return bool(self.model.facts.get("batch_one"))

    def _infer(self, session: list[int], feeds: Feeds) -> Feeds:
        a, b = self.inputs_in_order(feeds, self.model.io.input_names)
        session.append(a.shape[0])
        return {"y": a + b}


def toy_convert(model: Model, out: Path, cfg: ToyConfig, calib: Any) -> Model:
    return Model(out, "toy", model.io, facts={"config": cfg, "calib": calib})


TOY = Target("toy", f"{__name__}:SumRunner", f"{__name__}:toy_convert", ToyConfig, output_format="toy")


# -- the description ---------------------------------------------------------------------------------------
def test_unset_descriptions_follow_from_the_others():
    assert (TOY.report_name, TOY.suffix, TOY.runs_format) == ("toy", ".toy", "toy")
    assert TOY.precisions == ("fp32", "int8")  # the config's, in one place
    quiet = Target("toy2", f"{__name__}:SumRunner", runs_format="", report_name="toy-cpu", suffix=".bin")
    assert (quiet.report_name, quiet.suffix, quiet.runs_format, quiet.precisions) == ("toy-cpu", ".bin", "", ("fp32",))


def test_every_registered_target_lives_in_its_own_module():
    for t in all_targets():
        module = type(t).__module__ if type(t) is not Target else None
        assert module is None or module.endswith(".target"), (t.name, module)
        assert t.precisions and t.runner_ref.count(":") == 1
        assert t.config_class is None or t.converter_ref, t.name  # a config means it converts
    assert get_target("tflite").config_class.__module__ == "edgeship.targets.tflite.target"


def test_a_target_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_target(get_target("openvino"))
    with pytest.raises(BadInput, match=r"unknown target 'edgetpu'; known: .*tflite-micro"):
        get_target("edgetpu")
    assert "toy" not in TARGETS


def test_availability_names_the_missing_modules_and_the_extra():
    missing = dataclasses.replace(TOY, modules=("numpy", "no_such_module_here"), extra="toy")
    assert missing.availability() == Availability(False, False, "install edgeship[toy] (no_such_module_here missing)")
    assert dataclasses.replace(TOY, modules=("numpy",)).availability() == Availability(True, True, "")


def test_a_target_that_refuses_says_why(monkeypatch):
    class Elsewhere(Target):
        def why_not_here(self) -> str:
            return "needs the toy accelerator"

    target = Elsewhere("toy-npu", f"{__name__}:SumRunner", refuse_unless_runnable=True)
    assert target.availability() == Availability(True, False, "needs the toy accelerator")
    with pytest.raises(NotRunnableHere, match=r"^needs the toy accelerator$"):
        target.runner(Model(Path("m.toy"), "toy", IO))


# -- the config --------------------------------------------------------------------------------------------
def test_config_defaults_to_the_first_precision_and_coerces_options():
    cfg = TOY.config(calib_samples=3, shapes={"a": [1, 2]})
    assert cfg == ToyConfig(precision="fp32", calib_samples=3, shapes={"a": [1, 2]})
    assert get_target("tflite-micro").config().precision == "int8"
    with pytest.raises(BadInput, match=r"ToyConfig.calib_samples: expected int, got 'many'"):
        TOY.config(calib_samples="many")  # what `--set calib_samples=many` gives


def test_config_refuses_what_the_target_lacks():
    with pytest.raises(BadInput, match=r"^target 'toy' has no precision 'int4'; choose one of fp32, int8$"):
        TOY.config("int4")
    with pytest.raises(BadInput, match=r"^target 'toy' has no option\(s\) colour, size; options: calib_samples, mode, "
                                       r"shapes$"):
        TOY.config(colour="red", size=2)
    with pytest.raises(BadInput, match=r"^target 'onnxruntime' cannot convert models$"):
        get_target("onnxruntime").config()


def test_config_checks_read_alike():
    with pytest.raises(BadInput, match=r"^toy precision 'int4'; choose one of fp32, int8$"):
        ToyConfig(precision="int4")
    with pytest.raises(BadInput, match=r"^toy mode 'slow'; choose one of fast, exact, unset$"):
        ToyConfig(mode="slow")
    with pytest.raises(BadInput, match=r"^toy calib_samples must be >= 1, got 0$"):
        ToyConfig(calib_samples=0)
    assert ToyConfig(mode=None).target == "toy"
    assert ToyConfig.from_json(ToyConfig(precision="int8").to_json()) == ToyConfig(precision="int8")


def test_convert_builds_the_config_and_calls_the_converter(tmp_path):
    src = Model(tmp_path / "m.onnx", "onnx", IO)
    out = TOY.convert(src, str(tmp_path / "m.toy"), "int8", calib="data:x", mode="exact")
    assert out.path == tmp_path / "m.toy"
    assert out.facts == {"config": ToyConfig(precision="int8", mode="exact"), "calib": "data:x"}


def test_a_pytorch_only_target_refuses_a_file_with_the_fix(tmp_path):
    torch_only = dataclasses.replace(TOY, formats=("torch",))
    with pytest.raises(BadInput, match=r"converts from the PyTorch source, not from .*m\.onnx"):
        torch_only.convert(Model(tmp_path / "m.onnx", "onnx", IO), tmp_path / "m.toy")


def test_load_ref_imports_what_it_names():
    assert load_ref("edgeship.targets.onnxruntime.runner:OrtRunner").__name__ == "OrtRunner"
    with pytest.raises(AttributeError):
        load_ref("edgeship.targets.base:NoSuchThing")


# -- runners -----------------------------------------------------------------------------------------------
def _feeds(n: int) -> Feeds:
    return {"b": np.full((n, 2), 10.0, np.float32), "a": np.arange(2 * n, dtype=np.float32).reshape(n, 2),
            "extra": np.zeros(1)}


def test_inputs_in_order_and_a_missing_one_named():
    runner = TOY.runner(Model(Path("m.toy"), "toy", IO))
    a, b = runner.inputs_in_order(_feeds(2), ["a", "b"])  # the model's order, whatever the feeds' order
    assert a[0].tolist() == [0.0, 1.0] and b[0].tolist() == [10.0, 10.0]
    with pytest.raises(BadInput, match=r"^feeds lack input\(s\) c, d of m\.toy$"):
        runner.inputs_in_order(_feeds(1), ["a", "c", "d"])


def test_a_fixed_batch_of_one_runs_row_by_row_and_stacks():
    whole = SumRunner(Model(Path("m.toy"), "toy", IO), threads=2)
    rows = SumRunner(Model(Path("m.toy"), "toy", IO, facts={"batch_one": True}))
    with whole, rows:
        out_whole, out_rows = whole.infer(_feeds(3))["y"], rows.infer(_feeds(3))["y"]
        assert whole.activate() == [3] and rows.activate() == [1, 1, 1]
    np.testing.assert_array_equal(out_rows, out_whole)
    assert out_rows.shape == (3, 2) and whole.threads == 2 and rows.threads is None
    assert whole.load_time_s is not None and whole.name == "toy:m.toy"


def test_runner_for_picks_the_target_by_format(tmp_path):
    tflite = Model(tmp_path / "m.tflite", "tflite", IO)
    assert type(runner_for(tflite)).__name__ == "TfliteRunner"  # LiteRT, not TFLite Micro
    assert type(runner_for(tflite, "tflite-micro")).__name__ == "MicroRunner"
    assert type(runner_for(Model(tmp_path / "m.onnx", "onnx", IO))).__name__ == "OrtRunner"
    with pytest.raises(BadInput, match="no runtime runs golden files"):
        runner_for(Model(tmp_path / "m.npz", "golden", IO))


# -- placement ---------------------------------------------------------------------------------------------
def test_placement_is_refused_unless_the_target_reports_it(tmp_path):
    assert not TOY.reports_placement
    with pytest.raises(BadInput, match=r"^target 'toy' cannot report op placement$"):
        TOY.placement(Model(tmp_path / "m.toy", "toy", IO))
