import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeship.check.comparator import check
from edgeship.cli.main import main
from edgeship.core.errors import BadInput
from edgeship.core.golden import is_golden, load_golden
from models.tiny import tiny_onnx


def _perturbed(src, dst, scale):
    """The same MLP with its last weight nudged by ``scale`` (relative): a controlled error."""
    m = onnx.load(str(src))
    w = m.graph.initializer[2]
    arr = numpy_helper.to_array(w)
    noise = np.random.default_rng(1).standard_normal(arr.shape).astype(np.float32)
    w.CopyFrom(numpy_helper.from_array(arr + scale * np.abs(arr).mean() * noise, w.name))
    onnx.save(m, str(dst))
    return dst


@pytest.fixture()
def models(tmp_path):
    ref = tiny_onnx(tmp_path / "ref.onnx")
    return ref, _perturbed(ref, tmp_path / "near.onnx", 1e-3), _perturbed(ref, tmp_path / "far.onnx", 0.5)


def test_defaults_by_precision_judge_real_errors(tmp_path, models):
    ref, near, far = models
    res = check(str(ref), [str(ref), str(near), str(far)], data="data:synthetic", limit=16)
    status = [c.status for c in res.candidates]
    assert status == ["pass", "fail", "fail"]  # fp32 parity is ~1e-5: a 1e-3 nudge fails it
    near_res = res.candidates[1]
    assert 1e-5 < near_res.summary["rel_err_max"] < 1e-2
    assert near_res.tightest[0].startswith("rel_err_max<=")
    # a task-level gate accepts the small error and still rejects the large one
    res = check(str(ref), [str(near), str(far)], data="data:synthetic", limit=16, gates=["cosine_min>=0.999"])
    assert [c.status for c in res.candidates] == ["pass", "fail"]


def test_golden_round_trip_is_a_reference(tmp_path, models):
    ref, near, _ = models
    res = check(str(ref), [str(near)], data="data:synthetic", limit=6)
    gpath = res.save_golden(tmp_path / "golden.npz", {"task": "other"})
    assert is_golden(gpath)
    ins, outs, _, meta = load_golden(gpath)
    assert len(ins) == 6 and set(outs[0]) == {"logits"} and meta["task"] == "other"
    again = check(str(gpath), [str(near)], gates=["cosine_min>=0.999"])
    assert again.candidates[0].summary["max_abs"] == pytest.approx(res.candidates[0].summary["max_abs"])
    with pytest.raises(BadInput, match="drop --data"):
        check(str(gpath), [str(near)], data="data:synthetic")


def test_cli_exit_codes(tmp_path, models, capsys):
    ref, near, far = models
    assert main(["check", str(ref), str(ref), "--data", "data:synthetic"]) == 0
    assert main(["check", str(ref), str(far), "--data", "data:synthetic"]) == 1
    assert main(["check", str(ref), str(tmp_path / "missing.onnx"), "--data", "data:synthetic"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and err.count("\n") == 1
    np.savez(tmp_path / "nan.npz", x=np.full((2, 16), np.nan, np.float32))
    assert main(["check", str(ref), str(near), "--data", str(tmp_path / "nan.npz")]) == 2
    assert main(["check", str(ref), str(near), "--data", "data:synthetic", "--gate", "cosine>=1"]) == 2


def test_failure_is_localised_to_the_first_diverging_node(tmp_path, models):
    ref, _, far = models  # far perturbs fc2's weight: fc1 and relu match, fc2 is where it starts
    res = check(str(ref), [str(far)], data="data:synthetic", limit=8)
    div = res.candidates[0].first_divergence
    assert div is not None and div["node"] == "fc2" and div["op_type"] == "MatMul"
    assert div["compared"] == 4  # h0, h1, h2 matched before h3 diverged
