"""The post-training quantization (PTQ) baselines QAT is compared with: the same model, the same bits,
calibrated on the same data.

- INT8: ``onnxruntime.quantization`` static QDQ, per-channel int8 weights, uint8 activations, MinMax;
- INT4: the same per-channel symmetric int4 grid as QAT, by round-to-nearest on the unchanged weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress.qat.batchnorm import fold_batchnorm
from edgeship.compress.qat.export import grids_of, legacy_export
from edgeship.compress.qat.fake_quant import quantizable
from edgeship.core.data import Dataset
from edgeship.sources.torch_source import TorchSource

PTQ_METHODS = {8: "onnxruntime.quantization static QDQ, per-channel int8 weights, uint8 activations, MinMax",
               4: "round-to-nearest per-channel symmetric int4 weights ([-8,7]), INT4 DequantizeLinear"}


def _ptq_int4(src: TorchSource, plain: Any, out: Path, calib: Dataset, tmp: Path) -> Path:
    import torch

    from edgeship.compress.qat import int4

    with torch.no_grad():
        for m in plain.modules():
            if quantizable(m):
                w = m.weight.detach().numpy()
                m.weight.copy_(torch.from_numpy(int4.round_to_grid(w, int4.grid_scale(w))))
    fp32 = tmp / "ptq-baked-fp32.onnx"
    legacy_export(src, plain, fp32)
    int4.write_int4(fp32, grids_of(plain), out)
    return out


def _ptq_int8(src: TorchSource, plain: Any, out: Path, calib: Dataset, tmp: Path) -> Path:
    from edgeship.compress import common

    fp32 = tmp / "ptq-fp32.onnx"
    legacy_export(common.clone_source(src, plain, ""), plain, fp32)
    return ptq_int8(fp32, calib, out)


# By QatConfig.bits: (source, BatchNorm-folded FP32 module, out, calibration data, temporary folder).
BUILDERS: dict[int, Callable[[TorchSource, Any, Path, Dataset, Path], Path]] = {8: _ptq_int8, 4: _ptq_int4}


def build_ptq(src: TorchSource, bits: int, out: Path, calib: Dataset, tmp: Path) -> Path:
    """Post-training quantization of the FP32 model with ``bits``, calibrated on ``calib``."""
    import copy

    return BUILDERS[bits](src, fold_batchnorm(copy.deepcopy(src.module).eval()), out, calib, tmp)


def ptq_int8(fp32: Path, calib: Dataset, out: Path) -> Path:
    """Static QDQ INT8 with onnxruntime.quantization (per-channel weights, MinMax calibration)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgeship.compress.train import split_rows
    from edgeship.core.atomic import atomic_path

    rows, _ = split_rows(calib)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(rows)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with atomic_path(out) as tmp:
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out
