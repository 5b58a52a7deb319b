"""The QAT step: fine-tune with fake quantization, export a quantized ONNX model, and compare it with
post-training quantization (PTQ) of the same model on the same data.

BatchNorm layers that follow a convolution are folded first (``qat/batchnorm.py``), every
Conv/Linear gets fake quantization (``qat/fake_quant.py``), the shared loop trains it against the
FP32 model, and ``qat/export.py`` writes the quantized ONNX model; ``qat/ptq.py`` builds the baseline.

Python API: ``qat(source, QatConfig(bits=8), data=..., out="model.int8.onnx") -> CompressResult``
(``report["comparison"]`` holds QAT vs PTQ vs FP32 on the held-out data, measured in ONNX Runtime).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from edgeship.compress.common import CompressResult
from edgeship.compress.qat.batchnorm import fold_batchnorm
from edgeship.compress.qat.config import QatConfig
from edgeship.compress.qat.export import export_quantized
from edgeship.compress.qat.fake_quant import freeze_observers, insert_fake_quant
from edgeship.compress.qat.ptq import PTQ_METHODS, build_ptq
from edgeship.compress.steps import register_step
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource


@register_step(QatConfig)
def qat(source: TorchSource | str, config: QatConfig, data: str | Dataset | None, out: str | Path | None = None,
        eval_data: str | Dataset | None = None, quiet: bool = False, fresh: bool = False) -> CompressResult:
    """Fake-quant fine-tune ``source`` on ``data`` and write ``out`` (.onnx, quantized).

    Returns a CompressResult whose report compares QAT with PTQ (same bits, same data) and FP32 on
    the held-out data, all run in ONNX Runtime."""
    import copy

    import torch

    from edgeship.compress import common, evaluate, output, train, training_data
    from edgeship.core.registry import require

    require("torch.ao.quantization", "core", "torch.ao quantization")
    out_path = output.check_output(out)
    if out_path is not None and out_path.suffix != ".onnx":
        raise BadInput(f"qat writes a quantized ONNX model; give -o {out_path.with_suffix('.onnx').name}")
    if data is None:
        raise BadInput("qat needs training data: give --data (e.g. data:digits-train or an .npz with labels)")
    src = common.resolve_source(source)
    ds = training_data.load_training_data(data, src)
    alpha = train.resolve_alpha(config.train.alpha, src.task, ds)
    train.seed_everything(config.train.seed)
    teacher = src.module.eval()
    student = fold_batchnorm(copy.deepcopy(teacher))
    layers = insert_fake_quant(student, config.bits)
    if layers == 0:
        raise BadInput("the model has no Conv1d/Conv2d/Linear layer to quantize")
    with torch.no_grad():  # calibrate the observers before training so the first steps see sane ranges
        student.train()
        for i, (feeds, _) in enumerate(train.batches(ds, config.train.batch_size, 0, config.train.seed)):
            if i >= 4:
                break
            train.first_output(student, feeds, list(src.example_inputs))
    run_key = f"qat:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
    fit_report = train.fit(student, teacher, ds, list(src.example_inputs), src.task,
                           dataclasses.replace(config.train, alpha=alpha),
                           checkpoint_dir=output.checkpoint_dir(out_path, fresh), run_key=run_key,
                           description=f"QAT int{config.bits}", quiet=quiet)
    student.apply(freeze_observers)
    report: dict[str, Any] = {"stage": "qat", "config": config.to_dict(), "source": src.name, "bits": config.bits,
                              "quantized_layers": layers, "data": ds.name, "alpha": alpha,
                              "train": fit_report.to_dict()}
    with tempfile.TemporaryDirectory(prefix="edgeship-qat-") as tmp_dir:
        tmp = Path(tmp_dir)
        target = out_path or tmp / "qat.onnx"
        report.update(export_quantized(src, student, config.bits, target, tmp))
        ev = evaluate.eval_dataset(src, eval_data)
        if ev is not None:
            comparison: dict[str, Any] = {"qat": evaluate.evaluate_onnx(target, src, ev)}
            if config.compare_ptq:
                ptq_path = tmp / f"ptq-int{config.bits}.onnx"
                build_ptq(src, config.bits, ptq_path, ds.head(config.calib_samples), tmp)
                comparison["ptq"] = evaluate.evaluate_onnx(ptq_path, src, ev)
                comparison["ptq_method"] = PTQ_METHODS[config.bits]
            comparison["data"] = ev.name
            report["comparison"] = comparison
        qat_src = common.clone_source(src, student, f"+qat{config.bits}")
        model = None
        if out_path is not None:
            from edgeship.core.artifact import Model, Step, now
            from edgeship.core.onnx_file import inspect

            step = Step(stage="qat", source=src.name, config=config.to_dict(), at=now())
            facts = {"precision": f"int{config.bits}", "qat": {k: v for k, v in report.items() if k != "config"}}
            model = Model(out_path, "onnx", inspect(out_path), (step,), facts).save()
    return CompressResult(qat_src, model, report)
