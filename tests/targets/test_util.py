"""Helpers the target packages share (targets/util.py): bundles swapped into place, rows of a batch,
layouts between ONNX and the runtimes, what C code prints."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgeship.core.errors import BadInput
from edgeship.targets.util import (
    capture_c_output,
    inverse_perm,
    layout_name,
    layout_perm,
    replace_tree,
    require_torch_source,
    run_rows,
    split_rows,
)


def test_rows_split_and_stack_back():
    feeds = {"x": np.arange(6).reshape(3, 2), "m": np.ones((3, 1))}
    rows = split_rows(feeds)
    assert len(rows) == 3 and rows[1]["x"].tolist() == [[2, 3]] and rows[1]["m"].shape == (1, 1)
    seen: list[int] = []

    def double(row):
        seen.append(row["x"].shape[0])
        return {"y": row["x"] * 2}

    assert run_rows(feeds, double)["y"].tolist() == [[0, 2], [4, 6], [8, 10]] and seen == [1, 1, 1]
    one = {"x": np.zeros((1, 2))}
    assert np.shares_memory(run_rows(one, lambda row: {"y": row["x"]})["y"], one["x"])  # one row: no stacking copy


def test_layouts_between_onnx_and_channels_last():
    assert layout_perm(("batch", 3, 8, 8), (1, 8, 8, 3)) == (0, 2, 3, 1)
    assert layout_perm(("batch", 3, 8, 8), (-1, 3, 8, 8)) is None  # already the same
    assert inverse_perm((0, 2, 3, 1)) == (0, 3, 1, 2)
    assert layout_name(4, (0, 2, 3, 1)) == "NHWC" and layout_name(4, None) == "NCHW"
    assert layout_name(2, None) == "as exported"
    with pytest.raises(BadInput, match="keep_nchw=True"):
        layout_perm(("batch", 3, 8, 8), (1, 5, 5, 3))


def test_replace_tree_swaps_a_bundle_whole(tmp_path):
    out = tmp_path / "m.mlpackage"
    out.mkdir()
    (out / "old.bin").write_text("old")
    new = tmp_path / "work" / "m.mlpackage"
    new.mkdir(parents=True)
    (new / "new.bin").write_text("new")
    assert replace_tree(new, out) == out
    assert [p.name for p in out.iterdir()] == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage", "work"]  # the old bundle is gone
    with pytest.raises(BadInput, match="does not exist; create it first"):
        replace_tree(new, tmp_path / "missing" / "m.mlpackage")


def test_a_file_where_a_source_is_needed_names_the_fix(tmp_path):
    with pytest.raises(BadInput, match=r"target 'executorch' converts from the PyTorch source.*zoo:NAME"):
        require_torch_source(tmp_path / "m.onnx", "executorch")


def test_capture_c_output_reads_the_file_descriptors():
    with capture_c_output() as log:
        os.write(1, b"from C on stdout\n")
        os.write(2, b"and on stderr\n")
    assert log == ["from C on stdout\nand on stderr\n"]
