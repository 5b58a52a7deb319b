"""``DistillConfig``: the student to build, what it learns besides the teacher's outputs, and how it
trains (``train``: distillation's measured schedule by default)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from edgeship.compress.train_settings import DistillTraining, TrainedConfig
from edgeship.core.config import described
from edgeship.core.errors import BadInput


@dataclasses.dataclass(frozen=True)
class DistillConfig(TrainedConfig):
    kind: ClassVar[str] = "distill"

    student: str = described("layers=3", "layers=N | layers=I,J,K | width=F | a model source with the teacher's "
                             "inputs", metavar="SPEC")
    text: tuple[str, ...] = described((), "extra training text files, one sentence per line (text models)",
                                      metavar="FILE")
    hidden_weight: float = described(1.0, "layers=N students: weight of matching each kept block's output to the "
                                     "teacher block it stands for (normalised MSE; 0 turns it off)", metavar="W")
    # teacher-initialised students keep the teacher's embedding tables: same input space as the
    # teacher, and each step updates 11.7M fewer weights for MiniLM (its word table is 2/3 of a
    # 3-layer student)
    freeze_embeddings: bool = described(True, "keep the embedding tables copied from the teacher frozen")
    train: DistillTraining = dataclasses.field(default_factory=DistillTraining)

    def validate(self) -> None:
        super().validate()
        if not self.student.strip():
            raise BadInput("student spec is empty; give layers=N, width=F or a model source (net.py:factory)")
        if self.hidden_weight < 0:
            raise BadInput(f"hidden_weight {self.hidden_weight} must be 0 or more")
        from edgeship.compress.distill.students import parse_student

        parse_student(self.student)  # fails early on a malformed layers=/width= spec
