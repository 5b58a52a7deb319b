"""The distill step: a smaller student learns the teacher's outputs.

Classifiers learn the teacher's temperature-scaled soft targets (KL · T²) plus the hard labels when
the data has them (weighted ``1 - alpha``); embedding models learn the teacher's embeddings
(1 − cosine + MSE), and ``layers=N`` students also each kept block's hidden state
(``distill/hidden_states.py``). The student is given by a spec (``distill/students.py``).

Python API: ``distill(teacher, DistillConfig(student="layers=3"), data=..., out="student.onnx")``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeship.compress.common import CompressResult
from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.distill.hidden_states import HiddenStateMatch
from edgeship.compress.distill.students import build_student, freeze_embedding_tables
from edgeship.compress.steps import register_step
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource


def _same_rows(a: Dataset, b: Dataset) -> bool:
    """Whether two data sets hold the same rows (data:sentences without a split is its test split)."""
    import numpy as np

    if a.rows != b.rows or len(a.samples) != len(b.samples):
        return False
    return all(sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x)
               for x, y in zip(a.samples, b.samples, strict=True))


@register_step(DistillConfig)
def distill(teacher: TorchSource | str, config: DistillConfig, data: str | Dataset | None = None,
            out: str | Path | None = None, eval_data: str | Dataset | None = None, quiet: bool = False,
            fresh: bool = False) -> CompressResult:
    """Distill ``teacher`` (TorchSource or spec) into the student ``config.student`` on ``data``
    (plus ``config.text`` files for text models). Returns a CompressResult; checkpoints go to
    ``OUT.ckpt/`` beside the output, and a rerun after an interruption resumes from there."""
    from edgeship.compress import common, evaluate, output, train, training_data

    out_path = output.check_output(out)
    src = common.resolve_source(teacher)
    if data is None and not config.text:
        raise BadInput("distill needs training data: give --data (data:NAME, .npz) and/or --text FILE")
    ds = training_data.load_training_data(data, src, text_files=config.text) if data is not None else \
        training_data.text_files_dataset(src, config.text)
    alpha = train.resolve_alpha(config.train.alpha, src.task, ds)
    ev = evaluate.eval_dataset(src, eval_data)
    if ev is not None and _same_rows(ds, ev):
        raise BadInput(f"training data {ds.name!r} is the held-out set the student is judged on; train on other "
                       "data (e.g. data:sentences:calib or data:docstrings for text models)")
    train.seed_everything(config.train.seed)
    student, info = build_student(src, config.student)
    if config.freeze_embeddings and info["initialised_from"] == "the teacher":
        info["frozen"] = freeze_embedding_tables(student)
    teacher_module = src.module.eval()
    start = evaluate.evaluate_torch(common.clone_source(src, student, "+student"), src, ev)
    run_key = f"distill:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
    hooks = HiddenStateMatch(teacher_module, student, info["kept_layers"]) \
        if config.hidden_weight > 0 and info.get("kept_layers") else None
    try:
        fit_report = train.fit(student, teacher_module, ds, list(src.example_inputs), src.task,
                               dataclasses.replace(config.train, alpha=alpha),
                               checkpoint_dir=output.checkpoint_dir(out_path, fresh), run_key=run_key,
                               description=f"distill {config.student}", quiet=quiet,
                               aux_loss=None if hooks is None else hooks.loss_fn(config.hidden_weight))
    finally:
        if hooks is not None:
            hooks.remove()
    result_src = common.clone_source(src, student, f"+distill({config.student})")
    report: dict[str, Any] = {
        "stage": "distill", "config": config.to_dict(), "teacher": src.name, **info,
        "data": ds.name, "rows": ds.rows, "alpha": alpha,
        **common.size_change(teacher_module, student, src.example_inputs, ("teacher", "student")),
        "train": fit_report.to_dict(),
    }
    if ev is not None:
        report["eval"] = {"data": ev.name, "before_training": start, **evaluate.evaluate_torch(result_src, src, ev)}
    model = None
    if out_path is not None:
        model = output.write_output(result_src, out_path, "distill", config,
                                    {"compression": {k: report[k] for k in ("params", "macs")}}, src.name)
    return CompressResult(result_src, model, report)
