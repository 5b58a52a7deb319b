import json

import onnx
import pytest

from edgeship.core.artifact import Model, sidecar_path
from edgeship.core.errors import BadInput
from edgeship.core.onnx_file import load
from models.tiny import tiny_onnx


def test_open_reads_io_spec_with_symbolic_dims(tmp_path):
    m = Model.open(tiny_onnx(tmp_path / "m.onnx"))
    assert m.format == "onnx"
    assert [str(t) for t in m.io.inputs] == ["x: float32[batch,16]"]
    assert m.io.outputs[0].shape == ("batch", 4)
    assert m.io.inputs[0].is_dynamic


def test_sidecar_round_trip_provenance_and_staleness(tmp_path):
    src = Model.open(tiny_onnx(tmp_path / "a.onnx"))
    out = tiny_onnx(tmp_path / "b.onnx", seed=3)
    derived = src.derive(out, "quantize", {"kind": "int8"}, facts={"precision": "int8"}).save()
    again = Model.open(out)
    assert again.provenance[-1].stage == "quantize" and again.provenance[-1].source == str(src.path)
    assert again.facts == {"precision": "int8"}
    assert json.loads(sidecar_path(out).read_text())["sha256"] == derived.sha256
    tiny_onnx(out, seed=4)  # the file changes under the sidecar: the sidecar is stale and ignored
    assert Model.open(out).facts == {}


def test_bad_files_get_one_line_errors(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        Model.open(tmp_path / "none.onnx")
    text = tmp_path / "text.onnx"
    text.write_text("hello, I am not a model\n" * 20)
    with pytest.raises(BadInput, match=r"not a readable ONNX file|not an ONNX model"):
        load(text)
    good = tiny_onnx(tmp_path / "good.onnx")
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadInput) as exc:
        load(trunc)
    assert "\n" not in str(exc.value)
    pkl = tmp_path / "ckpt.onnx"
    pkl.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(BadInput, match="pickle checkpoint"):
        load(pkl)
    with pytest.raises(BadInput, match="unknown model format"):
        Model.open(text.rename(tmp_path / "model.weird"))


def test_checker_failure_and_external_data_traversal(tmp_path):
    p = tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(p))
    model.graph.node[0].input[1] = "does_not_exist"
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(BadInput, match="fails the ONNX checker"):
        load(tmp_path / "broken.onnx")
    model = onnx.load(str(p))
    w = model.graph.initializer[0]
    w.data_location = onnx.TensorProto.EXTERNAL
    w.ClearField("raw_data")
    w.ClearField("float_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    onnx.save(model, str(tmp_path / "evil.onnx"))
    with pytest.raises(BadInput, match="outside the model's folder"):
        load(tmp_path / "evil.onnx")


def test_concrete_shape_fills_batch_and_sequence_and_names_the_fix():
    from edgeship.core.artifact import TensorSpec

    ids = TensorSpec("input_ids", "int64", ("batch", "sequence"))
    assert ids.concrete(4, 32) == (4, 32)
    assert TensorSpec("x", "float32", (-1, 3, 224, 224)).concrete(2) == (2, 3, 224, 224)  # -1: any size
    with pytest.raises(BadInput, match=r"symbolic dim 'sequence' at axis 1; fix it with --shape input_ids:1,N"):
        ids.concrete()
    with pytest.raises(BadInput, match="give calibration data"):
        TensorSpec("x", "float32", (1, "h", "w")).concrete(fix="give calibration data")
