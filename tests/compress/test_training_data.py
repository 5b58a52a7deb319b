"""What compression trains on: every registered data set (text ones tokenised by the source's own
tokenizer), .npz files, and text files."""

from __future__ import annotations

import numpy as np
import pytest
from compress_models import digits_source, tiny_bert_source

from edgeship.compress import training_data
from edgeship.core.errors import BadInput


def test_text_is_tokenised_in_chunks_like_one_sentence_at_a_time():
    """A fast tokenizer reads the corpus in chunks; each sentence still comes out alone, unpadded."""
    import dataclasses

    import torch

    from edgeship.zoo.minilm import tokenizer

    tok = tokenizer()
    names = ("input_ids", "attention_mask", "token_type_ids")
    src = dataclasses.replace(tiny_bert_source(layers=2), extra={"tokenizer": tok},
                              example_inputs={n: torch.zeros(1, 4, dtype=torch.int64) for n in names})
    sentences = ["Deprecated.", "Return the list of offsets.", "Write text at the current turtle position, slowly."]
    ds = training_data.text_dataset(src, sentences, "t")
    for text, sample in zip(sentences, ds.samples, strict=True):
        alone = tok(text, return_tensors="np")
        assert sorted(sample) == sorted(names)
        for n in names:
            assert sample[n].dtype == np.int64 and sample[n].tolist() == alone[n].tolist()


@pytest.mark.parametrize("spec", ["data:docstrings", "data:sentences:calib"])
def test_text_data_needs_the_sources_tokenizer(spec):
    with pytest.raises(BadInput, match=r"is text; test:tiny-bert has no tokenizer") as err:
        training_data.load_training_data(spec, tiny_bert_source(layers=2))
    assert "\n" not in str(err.value)


def test_registered_training_split_with_labels():
    ds = training_data.load_training_data("data:digits-train", digits_source(), limit=100)
    assert ds.name == "data:digits-train" and len(ds) == 100 and ds.labels is not None and len(ds.labels) == 100


def test_text_files_need_a_tokenizer_and_lines(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(BadInput, match="no non-empty lines"):
        training_data.read_text_file(empty)
    with pytest.raises(BadInput, match="not found"):
        training_data.read_text_file(tmp_path / "none.txt")
    with pytest.raises(BadInput, match="no tokenizer"):
        training_data.text_dataset(tiny_bert_source(layers=2), ["A sentence."], "t")
