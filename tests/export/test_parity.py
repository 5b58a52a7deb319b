"""Export parity through the one comparison engine: an ONNX file against its reference, per output."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgeship.check.gates import parse_gates
from edgeship.core.artifact import Model
from edgeship.export.config import DEFAULT_PARITY_GATES, ExportConfig
from edgeship.export.parity import ParityData, check_parity, ort_reference, parity_data_onnx, synthetic_like
from models.tiny import tiny_onnx


def _feeds(n: int = 6) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"x": rng.standard_normal((2, 16)).astype(np.float32)} for _ in range(n)]


def test_a_file_matches_itself_under_the_fp32_tolerance(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    model = Model.open(path)
    rec = check_parity(ort_reference(model), ["logits"], path, model.io, ParityData(_feeds(), "test"),
                       ExportConfig(), "other")
    assert rec["passed"] and rec["worst_output"] is None and rec["samples"] == 6
    assert rec["gates"] == [str(g) for g in parse_gates(DEFAULT_PARITY_GATES)]
    assert rec["outputs"]["logits"]["passed"] and rec["outputs"]["logits"]["max_abs"] == 0


def test_a_changed_weight_fails_and_names_the_output(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    for init in proto.graph.initializer:
        if init.name == "b2":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.01, "b2"))
    changed = tmp_path / "changed.onnx"
    onnx.save(proto, str(changed))
    reference = ort_reference(Model.open(path))
    rec = check_parity(reference, ["logits"], changed, Model.open(changed).io, ParityData(_feeds(), "test"),
                       ExportConfig(), "other")
    assert not rec["passed"] and rec["worst_output"] == "logits" and "rel_err_max" in rec["why"]
    assert not rec["outputs"]["logits"]["passed"]


def test_parity_data_for_onnx_and_synthetic_feeds(tmp_path):
    model = Model.open(tiny_onnx(tmp_path / "m.onnx"))
    data = parity_data_onnx(model, ExportConfig(parity_samples=5), None, None)
    assert len(data.feeds) == 5 and data.feeds[0]["x"].shape == (1, 16)
    example = {"x": np.full((1, 16), 3.0, np.float32), "ids": np.array([[4, 9]], np.int64)}
    feeds = synthetic_like(example, model.io, 4)
    assert len(feeds) == 4 and all(f["ids"].min() >= 4 and f["ids"].max() <= 9 for f in feeds)
    assert abs(np.mean([f["x"].mean() for f in feeds]) - 3.0) < 0.5
