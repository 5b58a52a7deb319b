"""Distillation: students from the teacher's own blocks or width, trained on real data."""

from __future__ import annotations

import numpy as np
import pytest
from compress_models import digits_source, one_torch_thread, tiny_bert_source, token_dataset

from edgeship.compress.distill import DistillConfig, distill, parse_student
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def bert():
    # A wide initialisation makes every block matter: dropping two leaves a poor student to train.
    return tiny_bert_source(layers=4, heads=4, hidden=32, init=0.2)


def test_layer_students_keep_the_first_and_the_last_block():
    from edgeship.compress.distill import evenly_spaced

    assert evenly_spaced(3, 6) == [0, 3, 5]
    assert evenly_spaced(2, 4) == [0, 3] and evenly_spaced(1, 6) == [5] and evenly_spaced(4, 12) == [0, 4, 7, 11]


def test_student_specs_parse():
    assert parse_student("layers=3") == ("layers", "3")
    assert parse_student("width=0.5") == ("width", "0.5")
    assert parse_student("net.py:build") == ("source", "net.py:build")
    with pytest.raises(BadInput, match="give a value"):
        DistillConfig(student="layers=")
    assert DistillConfig.from_json(DistillConfig(student="layers=0,2", text=("a.txt",)).to_json()).text == ("a.txt",)


@pytest.mark.slow
def test_layer_student_copies_evenly_spaced_blocks_and_learns_the_embeddings(bert, tmp_path):
    data, held_out = token_dataset(64, seed=0), token_dataset(16, seed=1)
    with one_torch_thread():
        result = distill(bert, DistillConfig(student="layers=2", epochs=3, lr=3e-3, batch_size=16), data=data,
                         eval_data=held_out, out=tmp_path / "student.onnx", quiet=True)
    rep = result.report
    assert rep["kept_layers"] == [0, 3]  # first and last kept
    assert rep["frozen"] == ["bert.embeddings.word_embeddings", "bert.embeddings.position_embeddings",
                             "bert.embeddings.token_type_embeddings"]
    assert rep["config"]["schedule"] == "linear"
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
        result = distill(digits, DistillConfig(student="width=0.5", epochs=2, lr=2e-3), data="data:digits-train",
                         out=tmp_path / "w50.pt2", quiet=True)
    rep = result.report
    assert rep["alpha"] == 0.5  # labelled data: half soft targets, half hard labels
    assert rep["eval"]["data"] == "data:digits-test"
    assert rep["eval"]["accuracy"] > rep["eval"]["before_training"]["accuracy"] + 3
    assert rep["eval"]["accuracy_drop"] < 3.0
    assert (tmp_path / "w50.pt2").is_file() and (tmp_path / "w50.pt2.ckpt" / "model.safetensors").is_file()


def test_bad_students_and_data(digits, bert, tmp_path):
    with pytest.raises(BadInput, match="no stack of repeated blocks"):
        distill(digits, DistillConfig(student="layers=1"), data="data:digits-calib", quiet=True)
    with pytest.raises(BadInput, match="give 1 to 3"):
        distill(bert, DistillConfig(student="layers=4"), data=token_dataset(4), quiet=True)
    with pytest.raises(BadInput, match="distinct, increasing"):
        distill(bert, DistillConfig(student="layers=2,0"), data=token_dataset(4), quiet=True)
    with pytest.raises(BadInput, match="needs training data"):
        distill(bert, DistillConfig(student="layers=2"), quiet=True)
    unlabelled = Dataset("unlabelled", token_dataset(4).samples)
    with pytest.raises(BadInput, match=r"hard labels apply to classifiers only|no labels"):
        distill(bert, DistillConfig(student="layers=2", alpha=0.5), data=unlabelled, quiet=True)
    text = tmp_path / "t.txt"
    text.write_text("One sentence.\nAnother one.\n")
    with pytest.raises(BadInput, match="no tokenizer"):
        distill(bert, DistillConfig(student="layers=2", text=(str(text),)), quiet=True)


def test_labelled_data_required_for_hard_labels(digits):
    from edgeship.core.data import load_data

    ds = load_data("data:digits-calib", digits.io)
    unlabelled = Dataset("digits-unlabelled", ds.samples, None)
    with pytest.raises(BadInput, match="has no labels"):
        distill(digits, DistillConfig(student="width=0.5", alpha=0.3), data=unlabelled, quiet=True)


def test_factory_student_must_take_the_teacher_inputs(bert, tmp_path):
    factory = tmp_path / "student.py"
    factory.write_text(
        "import torch\n"
        "class S(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.fc = torch.nn.Linear(64, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
        "def build():\n"
        "    return S().eval(), (torch.zeros(1, 1, 8, 8),)\n")
    with pytest.raises(BadInput, match="needs the teacher's inputs"):
        distill(bert, DistillConfig(student=f"{factory}:build"), data=token_dataset(4), quiet=True)


def test_text_files_feed_a_tokenizer_model(bert, tmp_path):
    """A source with a tokenizer turns --text lines into samples, each tokenised alone."""
    import dataclasses

    class Tok:
        def __call__(self, text, return_tensors, truncation, max_length):
            ids = np.array([[2] + [4 + (ord(c) % 50) for c in text[:10]] + [3]], dtype=np.int64)
            return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    src = dataclasses.replace(bert, extra={"tokenizer": Tok()})
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(f"Sentence number {i} about edge devices." for i in range(20)) + "\n\n")
    with one_torch_thread():
        result = distill(src, DistillConfig(student="layers=2", epochs=1, text=(str(text),)), quiet=True)
    assert result.report["rows"] == 20 and result.report["train"]["steps"] == 1


def test_training_on_the_held_out_set_is_refused(bert):
    held_out = token_dataset(8, seed=1)
    with pytest.raises(BadInput, match="held-out set"):
        distill(bert, DistillConfig(student="layers=2"), data=held_out, eval_data=held_out, quiet=True)


def test_text_is_tokenised_in_chunks_like_one_sentence_at_a_time():
    """A fast tokenizer reads the corpus in chunks; each sentence still comes out alone, unpadded."""
    import dataclasses

    import torch

    from edgeship.compress import common
    from edgeship.zoo.models import tokenizer

    tok = tokenizer()
    names = ("input_ids", "attention_mask", "token_type_ids")
    src = dataclasses.replace(tiny_bert_source(layers=2), extra={"tokenizer": tok},
                              example_inputs={n: torch.zeros(1, 4, dtype=torch.int64) for n in names})
    sentences = ["Deprecated.", "Return the list of offsets.", "Write text at the current turtle position, slowly."]
    ds = common.text_dataset(src, sentences, "t")
    for text, sample in zip(sentences, ds.samples, strict=True):
        alone = tok(text, return_tensors="np")
        assert sorted(sample) == sorted(names)
        for n in names:
            assert sample[n].dtype == np.int64 and sample[n].tolist() == alone[n].tolist()
    with pytest.raises(BadInput, match="no tokenizer"):
        common.load_training_data("data:docstrings", tiny_bert_source(layers=2))
