"""``QatConfig``: the bits to train for, the PTQ comparison, and how to fine-tune (``train``: a low rate,
2 epochs by default)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from edgeship.compress.train_settings import QatTraining, TrainedConfig
from edgeship.core.config import described
from edgeship.core.errors import BadInput


@dataclasses.dataclass(frozen=True)
class QatConfig(TrainedConfig):
    kind: ClassVar[str] = "qat"

    bits: Literal[8, 4] = described(8, "8: INT8 weights and activations; 4: INT4 weights")
    compare_ptq: bool = described(True, "compare with post-training quantization of the same model on the same data")
    calib_samples: int = described(128, "rows used to calibrate the PTQ baseline", metavar="N")
    train: QatTraining = dataclasses.field(default_factory=QatTraining)

    def validate(self) -> None:
        super().validate()
        if self.calib_samples < 1:
            raise BadInput(f"calib_samples {self.calib_samples} must be at least 1")
