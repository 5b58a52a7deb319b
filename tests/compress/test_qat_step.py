"""The QAT step on the zoo's digits CNN: INT8 QDQ and INT4 weights that ONNX Runtime runs, compared with PTQ."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.compress.qat.config import QatConfig
from edgeship.compress.qat.step import qat
from edgeship.compress.train_settings import QatTraining
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def eval_set(digits):
    from edgeship.core.data import load_data

    return load_data("data:digits-test", digits.io, limit=200)


def _initializer_types(path):
    """The model and the element types of its weight tensors (initializers with 2 or more dims)."""
    model = onnx.load(str(path))
    return model, {t.name: t.data_type for t in model.graph.initializer if len(t.dims) >= 2}


@pytest.mark.slow
def test_int8_qat_writes_qdq_that_onnxruntime_runs_as_integer_kernels(digits, eval_set, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "q8.onnx"
    with one_torch_thread():
        result = qat(digits, QatConfig(bits=8, train=QatTraining(epochs=1, lr=1e-4)), data="data:digits-train", out=out,
                     eval_data=eval_set, quiet=True)
    model, types = _initializer_types(out)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert sorted(types.values()) == [onnx.TensorProto.INT8] * 4  # 2 conv + 2 linear weights, int8
    # ONNX Runtime fuses the pairs into integer kernels
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "QLinearConv" in fused
    cmp_ = result.report["comparison"]
    assert cmp_["qat"]["accuracy_drop"] <= 1.0 and "ptq" in cmp_
    assert cmp_["qat"]["size_bytes"] < 0.5 * 4 * 13178  # int8 weights: under half the FP32 bytes
    assert result.model.facts["precision"] == "int8"


@pytest.mark.slow
def test_int4_qat_stores_int4_weights_and_is_compared_with_ptq(digits, eval_set, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "q4.onnx"
    with one_torch_thread():
        result = qat(digits, QatConfig(bits=4, train=QatTraining(epochs=2, lr=1e-3)), data="data:digits-train", out=out,
                     eval_data=eval_set, quiet=True)
    model, types = _initializer_types(out)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 21
    int4 = [n for n, t in types.items() if t == onnx.TensorProto.INT4]
    assert len(int4) == 4 and result.report["int4_weights"] == 4
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.concatenate([s["input"] for s in eval_set.samples[:16]])
    assert sess.run(None, {"input": x})[0].shape == (16, 10)
    cmp_ = result.report["comparison"]
    assert cmp_["ptq_method"].startswith("round-to-nearest")
    assert cmp_["qat"]["accuracy"] > 90 and cmp_["ptq"]["accuracy"] > 80
    assert cmp_["qat"]["cosine_mean"] > cmp_["ptq"]["cosine_mean"] - 0.01


def test_bad_input(digits, tmp_path):
    with pytest.raises(BadInput, match=r"give -o q\.onnx"):
        qat(digits, QatConfig(), data="data:digits-calib", out=tmp_path / "q.pt2")
    with pytest.raises(BadInput, match="needs training data"):
        qat(digits, QatConfig(), data=None)
    from edgeship.core.data import Dataset, load_data

    unlabelled = Dataset("u", load_data("data:digits-calib", digits.io).samples, None)
    with pytest.raises(BadInput, match="no labels"):
        qat(digits, QatConfig(train=QatTraining(alpha=0.5)), data=unlabelled, quiet=True)
