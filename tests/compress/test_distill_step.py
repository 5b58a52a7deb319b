"""The distill step: students trained on real data (soft targets, hard labels, hidden states), text files,
and the held-out set kept out of training."""

from __future__ import annotations

import pytest
from compress_models import digits_source, one_torch_thread, tiny_bert_source, token_dataset

from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.distill.step import distill
from edgeship.compress.train_settings import DistillTraining
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def bert():
    # A wide initialisation makes every block matter: dropping two leaves a poor student to train.
    return tiny_bert_source(layers=4, heads=4, hidden=32, init=0.2)


@pytest.mark.slow
def test_layer_student_copies_evenly_spaced_blocks_and_learns_the_embeddings(bert, tmp_path):
    data, held_out = token_dataset(64, seed=0), token_dataset(16, seed=1)
    with one_torch_thread():
        cfg = DistillConfig(student="layers=2", train=DistillTraining(epochs=3, lr=3e-3, batch_size=16))
        result = distill(bert, cfg, data=data, eval_data=held_out, out=tmp_path / "student.onnx", quiet=True)
    rep = result.report
    assert rep["kept_layers"] == [0, 3]  # first and last kept
    assert rep["frozen"] == ["bert.embeddings.word_embeddings", "bert.embeddings.position_embeddings",
                             "bert.embeddings.token_type_embeddings"]
    assert rep["config"]["train"]["schedule"] == "linear"
    student_layers = result.source.module.bert.encoder.layer
    teacher_layers = bert.module.bert.encoder.layer
    assert len(student_layers) == 2 and len(teacher_layers) == 4  # the teacher is left alone
    assert rep["params"]["ratio"] < 0.6
    assert rep["train"]["steps"] == 12 and rep["train"]["last_loss"] < 0.5 * rep["train"]["first_loss"]
    # training moved the student towards the teacher on held-out sequences
    assert rep["eval"]["before_training"]["cosine_mean"] < 0.5 < 0.8 < rep["eval"]["cosine_mean"]
    assert result.model.path.is_file() and result.model.provenance[0].stage == "distill"


@pytest.mark.slow
def test_width_student_of_the_digits_cnn_learns_from_soft_and_hard_targets(digits, tmp_path):
    with one_torch_thread():
        result = distill(digits, DistillConfig(student="width=0.5", train=DistillTraining(epochs=2, lr=2e-3)),
                         data="data:digits-train",
                         out=tmp_path / "w50.pt2", quiet=True)
    rep = result.report
    assert rep["alpha"] == 0.5  # labelled data: half soft targets, half hard labels
    assert rep["eval"]["data"] == "data:digits-test"
    assert rep["eval"]["accuracy"] > rep["eval"]["before_training"]["accuracy"] + 3
    assert rep["eval"]["accuracy_drop"] < 3.0
    assert (tmp_path / "w50.pt2").is_file() and (tmp_path / "w50.pt2.ckpt" / "model.safetensors").is_file()


def test_bad_data(digits, bert, tmp_path):
    with pytest.raises(BadInput, match="no stack of repeated blocks"):
        distill(digits, DistillConfig(student="layers=1"), data="data:digits-calib", quiet=True)
    with pytest.raises(BadInput, match="needs training data"):
        distill(bert, DistillConfig(student="layers=2"), quiet=True)
    unlabelled = Dataset("unlabelled", token_dataset(4).samples)
    with pytest.raises(BadInput, match=r"hard labels apply to classifiers only|no labels"):
        distill(bert, DistillConfig(student="layers=2", train=DistillTraining(alpha=0.5)), data=unlabelled, quiet=True)
    text = tmp_path / "t.txt"
    text.write_text("One sentence.\nAnother one.\n")
    with pytest.raises(BadInput, match="no tokenizer"):
        distill(bert, DistillConfig(student="layers=2", text=(str(text),)), quiet=True)


def test_labelled_data_required_for_hard_labels(digits):
    from edgeship.core.data import load_data

    ds = load_data("data:digits-calib", digits.io)
    unlabelled = Dataset("digits-unlabelled", ds.samples, None)
    with pytest.raises(BadInput, match="has no labels"):
        distill(digits, DistillConfig(student="width=0.5", train=DistillTraining(alpha=0.3)), data=unlabelled,
                quiet=True)


def test_text_files_feed_a_tokenizer_model(bert, tmp_path):
    """A source with a tokenizer turns --text lines into samples, each tokenised alone."""
    import dataclasses

    import numpy as np

    class Tok:
        def __call__(self, text, return_tensors, truncation, max_length):
            ids = np.array([[2] + [4 + (ord(c) % 50) for c in text[:10]] + [3]], dtype=np.int64)
            return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    src = dataclasses.replace(bert, extra={"tokenizer": Tok()})
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(f"Sentence number {i} about edge devices." for i in range(20)) + "\n\n")
    with one_torch_thread():
        cfg = DistillConfig(student="layers=2", text=(str(text),), train=DistillTraining(epochs=1))
        result = distill(src, cfg, quiet=True)
    assert result.report["rows"] == 20 and result.report["train"]["steps"] == 1


def test_training_on_the_held_out_set_is_refused(bert):
    held_out = token_dataset(8, seed=1)
    with pytest.raises(BadInput, match="held-out set"):
        distill(bert, DistillConfig(student="layers=2"), data=held_out, eval_data=held_out, quiet=True)
