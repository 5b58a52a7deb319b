"""Student specs: the teacher's own blocks (evenly spaced, first and last kept), its width, or a model source."""

from __future__ import annotations

import pytest
from compress_models import digits_source, tiny_bert_source, token_dataset

from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.distill.step import distill
from edgeship.compress.distill.students import build_student, evenly_spaced
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    return digits_source()


@pytest.fixture(scope="module")
def bert():
    # A wide initialisation makes every block matter: dropping two leaves a poor student to train.
    return tiny_bert_source(layers=4, heads=4, hidden=32, init=0.2)


def test_layer_students_keep_the_first_and_the_last_block():
    assert evenly_spaced(3, 6) == [0, 3, 5]
    assert evenly_spaced(2, 4) == [0, 3] and evenly_spaced(1, 6) == [5] and evenly_spaced(4, 12) == [0, 4, 7, 11]


def test_layer_and_width_students_are_built_from_the_teacher(bert, digits):
    student, info = build_student(bert, "layers=0,3")
    assert len(student.bert.encoder.layer) == 2 and info == {"student": "layers=0,3", "initialised_from": "the teacher",
                                                               "kept_layers": [0, 3]}
    assert student.bert.config.num_hidden_layers == 2 and len(bert.module.bert.encoder.layer) == 4
    narrow, info = build_student(digits, "width=0.5")
    assert narrow.features[0].out_channels == 8 and info["initialised_from"] == "the teacher"


def test_bad_student_specs(digits, bert):
    with pytest.raises(BadInput, match="no stack of repeated blocks"):
        build_student(digits, "layers=1")
    with pytest.raises(BadInput, match="give 1 to 3"):
        build_student(bert, "layers=4")
    with pytest.raises(BadInput, match="distinct, increasing"):
        build_student(bert, "layers=2,0")
    with pytest.raises(BadInput, match="strictly between 0 and 1"):
        build_student(digits, "width=1.5")


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
