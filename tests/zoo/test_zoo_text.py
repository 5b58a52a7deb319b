"""Text as token inputs: each sentence alone, fast tokenizers in chunks with the same ids, fixed lengths
padded, models that take no tokens refused."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput
from edgeship.zoo import text

NAMES = ("input_ids", "attention_mask", "token_type_ids")
SENTENCES = ["Deprecated.", "Return the list of offsets.", "Write text at the current turtle position, slowly."]


def _io(shape: tuple, dtype: str = "int64", names: tuple[str, ...] = NAMES) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, dtype, shape) for n in names), (TensorSpec("out", "float32", ()),))


def test_chunks_give_the_ids_of_one_sentence_at_a_time():
    from edgeship.zoo.minilm import tokenizer

    tok = tokenizer()
    specs, seq = text.token_inputs("t", _io(("b", "s")), {})
    assert seq is None
    for sentence, sample in zip(SENTENCES, text.tokenize_each(tok, SENTENCES, specs), strict=True):
        alone = tok(sentence, return_tensors="np")
        assert all(sample[n].tolist() == alone[n].tolist() and sample[n].dtype == np.int64 for n in NAMES)


def test_a_fixed_sequence_length_pads_every_sentence():
    ds = text.text_dataset("t", SENTENCES, _io((1, 12), "int32"))
    assert all(s["input_ids"].shape == (1, 12) and s["input_ids"].dtype == np.int32 for s in ds)
    assert ds.samples[0]["attention_mask"].sum() < 12  # "Deprecated." is padded
    free = text.text_dataset("t", SENTENCES, _io((1, 12), "int32"), fixed_length=False)
    assert free.samples[0]["input_ids"].shape[1] < 12  # natural length, for training a PyTorch module
    assert ds.batch(2, 8)["input_ids"].shape == (2, 8)


@pytest.mark.parametrize(("io", "words"), [
    (_io(("b", "s"), names=("input_ids", "pixel_values")), "pixel_values"),
    (_io(("b", "s"), "float32"), "integer token ids"),
    (_io(("b", "s", 4)), "3 dims"),
    (IOSpec((TensorSpec("input_ids", "int64", (1, 8)), TensorSpec("attention_mask", "int64", (1, 9))), ()),
     "different fixed lengths"),
])
def test_models_without_token_inputs_are_refused(io, words):
    with pytest.raises(BadInput, match=words) as err:
        text.token_inputs("data:x", io, {})
    assert "\n" not in str(err.value)


def test_a_tokenizer_without_an_input_the_model_takes():
    class NoMask:
        def __call__(self, text, return_tensors, truncation, max_length):
            return {"input_ids": np.array([[1, 2, 3]])}

    with pytest.raises(BadInput, match="does not produce input"):
        text.text_dataset("t", ["A sentence."], _io(("b", "s"), names=("input_ids", "attention_mask")), NoMask())
