import pytest

from edgeship.core import atomic
from edgeship.core.errors import BadInput


def test_failed_write_keeps_the_good_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.bin"
    atomic.write_bytes(target, b"good")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half-writ")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_missing_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        atomic.write_text(tmp_path / "no" / "such" / "f.txt", "x")


def test_json_handles_numpy(tmp_path):
    import json

    import numpy as np

    atomic.write_json(tmp_path / "r.json", {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1.5, "b": [0, 1, 2]}


def test_outputs_get_umask_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o644
