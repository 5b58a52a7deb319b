"""The zoo models build offline from their wheels and compute what the real models compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.core.data import load_data
from edgeship.sources.torch_source import TorchSource
from edgeship.zoo import digits_cnn
from edgeship.zoo.base import ZOO, cache_dir, load_zoo, zoo_names
from edgeship.zoo.minilm import MINILM_EXAMPLE_SEQ, tokenizer

ESPRESSO, EGYPTIAN_CAT = 967, 285  # ImageNet class indices


def test_zoo_lists_the_bundled_models() -> None:
    assert {"minilm", "efficientnet-lite0", "digits-cnn"} <= set(zoo_names())


def test_each_bundled_model_is_its_own_module() -> None:
    """One module per asset registers its factory; the registry imports them on first read."""
    modules = {name: factory.__module__ for name, factory in ZOO.items()}
    assert modules["minilm"] == "edgeship.zoo.minilm"
    assert modules["efficientnet-lite0"] == "edgeship.zoo.efficientnet_lite0"
    assert modules["digits-cnn"] == "edgeship.zoo.digits_cnn"


def test_unknown_zoo_model_lists_the_known() -> None:
    from edgeship.core.errors import BadInput

    with pytest.raises(BadInput, match=r"unknown zoo model 'resnet'; known: .*digits-cnn.*minilm"):
        load_zoo("zoo:resnet")


# -- MiniLM -----------------------------------------------------------------------------------------
# Marked slow: importing transformers and sentence-transformers alone takes 5-15 s on a busy machine.
@pytest.fixture(scope="module")
def minilm() -> TorchSource:
    return load_zoo("zoo:minilm")


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm: TorchSource) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["ok", "Read a line.", "Return the filename associated with the payload if present.",
             "Deep copy operation on arbitrary Python objects, including recursive structures."]
    reference = SentenceTransformer(minilm.extra["model_path"], device="cpu").encode(
        texts, convert_to_numpy=True, batch_size=len(texts))
    tok = tokenizer()
    # Each sentence alone at its natural length ...
    alone = np.concatenate([minilm.forward_numpy(dict(tok([t], return_tensors="np")))["sentence_embedding"]
                            for t in texts])
    np.testing.assert_allclose(alone, reference, atol=1e-6)
    # ... and padded together: mean pooling must ignore the padding.
    padded = minilm.forward_numpy(dict(tok(texts, padding="max_length", max_length=40, return_tensors="np")))
    np.testing.assert_allclose(padded["sentence_embedding"], reference, atol=1e-6)
    assert padded["sentence_embedding"].shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(padded["sentence_embedding"], axis=1), 1.0, atol=1e-6)


@pytest.mark.slow
def test_minilm_embeds_meaning(minilm: TorchSource) -> None:
    tok = tokenizer()
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar on stage.",
             "The central bank raised interest rates again."]
    emb = minilm.forward_numpy(dict(tok(texts, padding=True, return_tensors="np")))["sentence_embedding"]
    similar, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert similar > 0.5 > unrelated + 0.3


@pytest.mark.slow
def test_minilm_source_describes_its_io(minilm: TorchSource) -> None:
    io = minilm.io
    assert io.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(t.dtype == "int64" and t.shape == ("batch", "sequence") for t in io.inputs)
    assert io.output_names == ["sentence_embedding"]
    example = minilm.example_inputs["input_ids"]
    assert tuple(example.shape) == (1, MINILM_EXAMPLE_SEQ)
    assert int(example[0, 0]) == 101 and 102 in example[0].tolist()  # [CLS] ... [SEP], then padding
    assert minilm.task == "embedding" and minilm.gate == ("cosine_mean>=0.995", "cosine_min>=0.98")
    assert (minilm.calib_data, minilm.eval_data) == ("data:sentences:calib", "data:sentences:test")
    assert minilm.extra["tokenizer"] is tokenizer()  # one tokenizer per process
    out = minilm.forward_numpy({k: v.numpy() for k, v in minilm.example_inputs.items()})
    assert out["sentence_embedding"].shape == (1, 384)


# -- EfficientNet-Lite0 -----------------------------------------------------------------------------
def _centre_crop_224(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(img[top:top + side, left:left + side]).resize((224, 224), Image.Resampling.BILINEAR)
    x = (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) / 0.5
    return x.transpose(2, 0, 1)[None]


@pytest.fixture(scope="module")
def efficientnet() -> TorchSource:
    return load_zoo("efficientnet-lite0")


def test_efficientnet_recognises_coffee_and_cat(efficientnet: TorchSource) -> None:
    from skimage import data as skdata

    batch = np.concatenate([_centre_crop_224(skdata.coffee()), _centre_crop_224(skdata.chelsea())])
    logits = efficientnet.forward_numpy({"input": batch})["logits"]
    assert logits.shape == (2, 1000)
    assert logits.argmax(axis=1).tolist() == [ESPRESSO, EGYPTIAN_CAT]
    # Batch rows are independent (eval-mode batch norm): row by row gives the same logits.
    one = efficientnet.forward_numpy({"input": batch[1:]})["logits"]
    np.testing.assert_allclose(one[0], logits[1], atol=1e-4)


def test_efficientnet_source_describes_its_io(efficientnet: TorchSource) -> None:
    (spec,) = efficientnet.io.inputs
    assert (spec.name, spec.dtype, spec.shape) == ("input", "float32", ("batch", 3, 224, 224))
    assert efficientnet.output_names == ["logits"] and efficientnet.task == "classification"
    assert efficientnet.gate == ("top1_agreement_confident>=0.99", "top5_agreement>=0.99")
    assert (efficientnet.calib_data, efficientnet.eval_data) == ("data:images:calib", "data:images:test")
    assert not efficientnet.module.training
    assert sum(p.numel() for p in efficientnet.module.parameters()) == 4_652_008


def test_efficientnet_on_held_out_photos(efficientnet: TorchSource) -> None:
    """The first test crops are the centre crops of the held-out photos, espresso and cat among them."""
    ds = load_data(efficientnet.eval_data, efficientnet.io, limit=2)
    preds = [int(efficientnet.forward_numpy(s)["logits"].argmax()) for s in ds]
    assert ds.info["crops"][:2] == ["coffee#0", "chelsea#0"]
    assert preds == [ESPRESSO, EGYPTIAN_CAT]


# -- digits CNN -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh cache folder for this module's digits-cnn loads (EDGESHIP_CACHE)."""
    folder = tmp_path_factory.mktemp("edgeship-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGESHIP_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def digits_first(digits_cache) -> TorchSource:
    return load_zoo("digits-cnn")


def _state_arrays(source: TorchSource) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in source.module.state_dict().items()}


def test_digits_cnn_is_accurate_on_held_out_digits(digits_first: TorchSource) -> None:
    ds = load_data(digits_first.eval_data, digits_first.io)
    assert len(ds) == 450 and ds.labels is not None
    logits = digits_first.forward_numpy({"input": np.concatenate([s["input"] for s in ds])})["logits"]
    accuracy = float((logits.argmax(axis=1) == ds.labels).mean())
    assert accuracy >= 0.97, accuracy
    assert digits_first.labels == [str(i) for i in range(10)]
    assert sum(p.numel() for p in digits_first.module.parameters()) == 13_178


def test_digits_cnn_trains_once_then_loads_from_cache(digits_cache, digits_first: TorchSource) -> None:
    from safetensors import safe_open

    path = digits_cnn.digits_weights_path()
    assert digits_first.extra["trained_now"] is True
    assert path.is_file() and path.is_relative_to(digits_cache) and path.suffix == ".safetensors"
    with safe_open(str(path), "np") as f:  # the recipe travels with the weights
        assert '"epochs": 30' in f.metadata()["recipe"]
    mtime = path.stat().st_mtime_ns
    second = load_zoo("digits-cnn")
    assert second.extra["trained_now"] is False
    assert path.stat().st_mtime_ns == mtime
    first, again = _state_arrays(digits_first), _state_arrays(second)
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_digits_cnn_training_is_deterministic_and_survives_a_damaged_cache(
        digits_first: TorchSource, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    path = digits_cnn.digits_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a safetensors file")
    retrained = load_zoo("digits-cnn")
    assert retrained.extra["trained_now"] is True
    first, again = _state_arrays(digits_first), _state_arrays(retrained)
    assert all(np.array_equal(first[k], again[k]) for k in first)  # bit-identical weights
    assert load_zoo("digits-cnn").extra["trained_now"] is False  # the damaged file was replaced


def test_digits_cache_key_follows_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    base = digits_cnn.digits_weights_path()
    assert base.parent == tmp_path / "zoo"
    monkeypatch.setitem(digits_cnn.DIGITS_TRAINING, "epochs", 31)
    assert digits_cnn.digits_weights_path() != base
    monkeypatch.delenv("EDGESHIP_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "edgeship"
