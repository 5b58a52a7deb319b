"""Core ML on Linux: packages are built and validated structurally; prediction is refused as "not run"."""

from __future__ import annotations

import sys

import pytest

from edgeship.api import convert
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput, NotRunnableHere
from edgeship.targets.base import get_target

pytest.importorskip("coremltools")
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="checks the Linux refusal")


@pytest.fixture(scope="module")
def ml_fp32(digits_source, out_dir):
    return convert(digits_source, "coreml", out_dir / "digits.mlpackage")


def test_fp32_package_structure(ml_fp32, digits_source):
    assert ml_fp32.path.is_dir() and ml_fp32.format == "mlpackage"
    s = ml_fp32.facts["coreml"]
    assert s["ops"]["conv"] == 2 and s["ops"].get("linear", 0) + s["ops"].get("matmul", 0) >= 2
    assert [t["name"] for t in s["inputs"]] == ["input"] and s["inputs"][0]["shape"][1:] == [1, 8, 8]
    assert [t["name"] for t in s["outputs"]] == ["logits"]
    assert s["compressed_weight_ops"] == 0
    reopened = Model.open(ml_fp32.path)
    assert reopened.io.input_names == ["input"] and reopened.facts["precision"] == "fp32"


def test_inspect_reads_the_package(ml_fp32, tmp_path):
    import shutil

    bare = tmp_path / "bare.mlpackage"
    shutil.copytree(ml_fp32.path, bare)
    io = Model.open(bare).io
    assert [(t.name, t.dtype, t.shape) for t in io.inputs] == [("input", "float32", (1, 1, 8, 8))]
    assert [t.name for t in io.outputs] == ["logits"]


@pytest.mark.parametrize("precision", ["int8-weights", "palette4"])
def test_weight_compression_shrinks_and_marks_weights(precision, digits_source, out_dir, ml_fp32):
    m = convert(digits_source, "coreml", out_dir / f"digits_{precision}.mlpackage", precision=precision)
    s = m.facts["coreml"]
    assert s["compressed_weight_ops"] >= 3  # conv and linear weights are constexpr-decompressed
    assert m.size_bytes < ml_fp32.size_bytes


@linux_only
def test_runner_refuses_with_the_reason(ml_fp32):
    target = get_target("coreml")
    avail = target.availability()
    assert avail.installed and not avail.runs_here and avail.why == "Core ML prediction needs macOS"
    with pytest.raises(NotRunnableHere, match=r"^Core ML prediction needs macOS$"):
        target.runner(ml_fp32)


@linux_only
def test_check_records_not_run_never_passed(ml_fp32, digits_source):
    from edgeship.check.comparator import check

    result = check(digits_source, [ml_fp32], data="data:digits-test", runtime="coreml", limit=8)
    d = result.to_dict()
    cand = d["candidates"][0]
    assert cand["status"] == "not_run" and "macOS" in cand["why"]
    assert not result.candidates[0].passed and not result.passed


def test_bad_suffix_and_precision(digits_source, out_dir):
    with pytest.raises(BadInput, match="mlpackage"):
        convert(digits_source, "coreml", out_dir / "digits.tflite")
    with pytest.raises(BadInput, match="precision"):
        convert(digits_source, "coreml", out_dir / "d.mlpackage", precision="int4")
