"""Knowledge distillation: a smaller student learns the teacher's outputs.

Classifiers learn the teacher's temperature-scaled soft targets (KL · T²) plus the hard labels when
the data has them (weighted ``1 - alpha``); embedding models learn the teacher's embeddings
(1 − cosine + MSE). The student is given by a *spec*:

- ``layers=3`` — the teacher with 3 of its repeated blocks (evenly spaced, first and last kept: 0,3,5
  of 6), weights copied from the teacher; ``layers=0,2,4`` names them;
- ``width=0.5`` — the teacher with every prunable channel group / attention head / MLP layer at half
  width (structured magnitude pruning), weights copied from the kept channels;
- anything else is a model source (``net.py:factory``, ``zoo:NAME``, ``model.pt2``) with the
  teacher's inputs and outputs, trained from its own initialisation.

Python API: ``distill(teacher, DistillConfig(student="layers=3"), data=..., out="student.onnx")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edgeship.compress.steps import register_step
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry


@dataclasses.dataclass(frozen=True)
class DistillConfig(Config):
    kind: ClassVar[str] = "distill"

    student: str = "layers=3"
    temperature: float = 4.0
    alpha: float | None = None  # weight of the teacher term; 1 - alpha weights hard labels (None: auto)
    epochs: int = 3
    lr: float = 1e-3  # peak rate; MiniLM layers=3, 200 steps: 1e-3 → cosine 0.898, 3e-4 → 0.887
    batch_size: int = 32
    max_steps: int | None = None
    text: tuple[str, ...] = ()  # extra training text files (one sentence per line) for text models
    hidden_weight: float = 1.0  # layers=N students: weight of matching each kept block's output to the
    #                             teacher block it stands for (normalised MSE); 0 turns it off
    schedule: str = "linear"  # learning rate: linear warm-up, then this decay (constant, linear, cosine)
    warmup: float = 0.06  # fraction of the steps spent warming up
    freeze_embeddings: bool = True  # teacher-initialised students keep the teacher's embedding tables:
    #                                 same input space as the teacher, and each step updates 11.7M fewer
    #                                 weights for MiniLM (its word table is 2/3 of a 3-layer student)
    seed: int = 0

    def validate(self) -> None:
        if not self.student.strip():
            raise BadInput("student spec is empty; give layers=N, width=F or a model source (net.py:factory)")
        if self.temperature <= 0:
            raise BadInput(f"temperature {self.temperature} must be positive (typical: 2 to 8)")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise BadInput(f"alpha {self.alpha} must be between 0 and 1 (1: teacher only)")
        if self.epochs < 1:
            raise BadInput(f"epochs {self.epochs} must be at least 1")
        if self.lr <= 0 or self.batch_size < 1:
            raise BadInput("lr must be positive and batch_size at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise BadInput(f"max_steps {self.max_steps} must be at least 1")
        if self.hidden_weight < 0:
            raise BadInput(f"hidden_weight {self.hidden_weight} must be 0 or more")
        from edgeship.compress.train import check_schedule

        check_schedule(self.schedule, self.warmup)
        parse_student(self.student)  # fails early on a malformed layers=/width= spec


# -- student builders (registered by spec scheme) ---------------------------------------------------
# A builder gets (teacher TorchSource, value after "=") and returns a student torch module.
STUDENTS: Registry[Callable[[Any, str], Any]] = Registry("student spec")


def parse_student(spec: str) -> tuple[str, str]:
    """``layers=3`` → ("layers", "3"); a model source → ("source", spec)."""
    scheme, sep, value = spec.partition("=")
    if sep and scheme in STUDENTS:
        if not value:
            raise BadInput(f"student {spec!r}: give a value, e.g. layers=3, layers=0,2,4 or width=0.5")
        return scheme, value
    return "source", spec


def repeated_blocks(module: Any) -> tuple[str, Any]:
    """The stack of repeated blocks (the largest ModuleList of same-type modules): encoder layers."""
    import torch

    best: tuple[str, Any] | None = None
    best_params = -1
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) >= 2 and len({type(c) for c in m}) == 1:
            n = sum(p.numel() for p in m.parameters())
            if n > best_params:
                best, best_params = (name, m), n
    if best is None:
        raise BadInput("the teacher has no stack of repeated blocks to drop layers from; use width=F or a "
                       "student factory (net.py:build)")
    return best


def evenly_spaced(count: int, total: int) -> list[int]:
    """``count`` of ``total`` block indices, evenly spaced from the first to the last: 0,3,5 of 6.

    The last block stays because it writes what the embedding pools: on MiniLM (200 steps, same
    recipe, held-out mean cosine) 0,3,5 reached 0.887, 1,3,5 0.880 and 0,2,4 only 0.754."""
    if count == 1:
        return [total - 1]
    return [int(i * (total - 1) / (count - 1) + 0.5) for i in range(count)]


@STUDENTS.register("layers")
def _fewer_layers(teacher: Any, value: str) -> Any:
    import copy

    import torch

    student = copy.deepcopy(teacher.module)
    name, blocks = repeated_blocks(student)
    total = len(blocks)
    try:
        parts = [int(v) for v in value.split(",")]
    except ValueError:
        raise BadInput(f"student layers={value}: give a count (layers=3) or indices (layers=0,2,4)") from None
    if len(parts) == 1:
        count = parts[0]
        if not 1 <= count < total:
            raise BadInput(f"student layers={count}: the teacher has {total} blocks in {name!r}; give 1 to {total - 1}")
        keep = evenly_spaced(count, total)
    else:
        keep = parts
        bad = [i for i in keep if not 0 <= i < total]
        if bad or len(set(keep)) != len(keep) or keep != sorted(keep):
            raise BadInput(f"student layers={value}: indices must be distinct, increasing and in 0..{total - 1}")
    parent_name, _, attr = name.rpartition(".")
    parent = student.get_submodule(parent_name) if parent_name else student
    setattr(parent, attr, torch.nn.ModuleList([blocks[i] for i in keep]))
    for m in student.modules():  # Hugging Face configs carry the layer count
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "num_hidden_layers"):
            cfg.num_hidden_layers = len(keep)
    student._edgeship_kept_layers = keep
    return student


@STUDENTS.register("width")
def _narrower(teacher: Any, value: str) -> Any:
    from edgeship.compress.prune import PruneConfig, prune

    try:
        width = float(value)
    except ValueError:
        raise BadInput(f"student width={value}: give the kept fraction, e.g. width=0.5") from None
    if not 0.0 < width < 1.0:
        raise BadInput(f"student width={value}: give a fraction strictly between 0 and 1")
    return prune(teacher, PruneConfig(ratio=round(1.0 - width, 6)), quiet=True).source.module


def build_student(teacher: Any, spec: str) -> tuple[Any, dict[str, Any]]:
    """The student module and a description of how it was made."""
    from edgeship.compress import common

    scheme, value = parse_student(spec)
    if scheme == "source":
        src = common.resolve_source(value)
        if list(src.example_inputs) != list(teacher.example_inputs):
            raise BadInput(f"student {value!r} takes inputs {list(src.example_inputs)} but the teacher takes "
                           f"{list(teacher.example_inputs)}; the student needs the teacher's inputs")
        module = common.copy_module(src.module)
        info: dict[str, Any] = {"student": value, "initialised_from": "its own weights"}
    else:
        module = STUDENTS.get(scheme)(teacher, value)
        info = {"student": spec, "initialised_from": "the teacher"}
        kept = getattr(module, "_edgeship_kept_layers", None)
        if kept is not None:
            info["kept_layers"] = kept
    _check_shapes(teacher, module)
    return module, info


def _check_shapes(teacher: Any, student: Any) -> None:
    import torch

    args = tuple(teacher.example_inputs.values())
    with torch.inference_mode():
        t, s = teacher.module(*args), student.eval()(*args)
    t = t[0] if isinstance(t, tuple | list) else t
    s = s[0] if isinstance(s, tuple | list) else s
    if tuple(t.shape) != tuple(s.shape):
        raise BadInput(f"the student's output has shape {list(s.shape)}, the teacher's {list(t.shape)}; "
                       "a student must produce the teacher's output shape")


def _same_rows(a: Any, b: Any) -> bool:
    """Whether two data sets hold the same rows (data:sentences without a split is its test split)."""
    import numpy as np

    if a.rows != b.rows or len(a.samples) != len(b.samples):
        return False
    return all(sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x)
               for x, y in zip(a.samples, b.samples, strict=True))


def freeze_embedding_tables(module: Any) -> list[str]:
    """Stop training every ``nn.Embedding`` of a teacher-initialised student (token, position, type
    tables); returns their names."""
    import torch

    frozen = []
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.Embedding):
            m.weight.requires_grad_(False)
            frozen.append(name)
    return frozen


class HiddenStateMatch:
    """For a ``layers=`` student: student block j learns the output of the teacher block it replaces
    (the last teacher block before the next kept one), as in DistilBERT/TinyBERT layer mapping.

    Forward hooks capture each block's output; the loss is the MSE normalised by the teacher state's
    mean square, averaged over blocks, so it is scale-free."""

    def __init__(self, teacher: Any, student: Any, kept: list[int]) -> None:
        _, t_blocks = repeated_blocks(teacher)
        _, s_blocks = repeated_blocks(student)
        ends = [nxt - 1 for nxt in kept[1:]] + [len(t_blocks) - 1]
        self.pairs = list(zip(range(len(s_blocks)), ends, strict=True))
        self.t_out: dict[int, Any] = {}
        self.s_out: dict[int, Any] = {}
        self.handles = [t_blocks[t].register_forward_hook(self._keep(self.t_out, t)) for _, t in self.pairs]
        self.handles += [s_blocks[s].register_forward_hook(self._keep(self.s_out, s)) for s, _ in self.pairs]

    @staticmethod
    def _keep(store: dict[int, Any], key: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            store[key] = output[0] if isinstance(output, tuple | list) else output

        return hook

    def loss_fn(self, weight: float) -> Callable[[], Any]:
        def loss() -> Any:
            total = 0.0
            for s, t in self.pairs:
                ref = self.t_out[t].detach()
                total = total + ((self.s_out[s] - ref) ** 2).mean() / (ref.pow(2).mean() + 1e-6)
            return weight * total / len(self.pairs)

        return loss

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@register_step("distill")
def distill(teacher: Any, config: DistillConfig, data: Any = None, out: str | Path | None = None,
            eval_data: Any = None, quiet: bool = False, fresh: bool = False) -> Any:
    """Distill ``teacher`` (TorchSource or spec) into the student ``config.student`` on ``data``
    (plus ``config.text`` files for text models). Returns a CompressResult; checkpoints go to
    ``OUT.ckpt/`` beside the output, and a rerun after an interruption resumes from there."""
    import shutil

    from edgeship.compress import common, train

    out_path = common.check_output(out)
    src = common.resolve_source(teacher)
    if data is None and not config.text:
        raise BadInput("distill needs training data: give --data (data:NAME, .npz) and/or --text FILE")
    ds = common.load_training_data(data, src, text_files=config.text) if data is not None else \
        common.text_dataset(src, [s for f in config.text for s in train.read_text_file(f)], "+".join(config.text))
    alpha = train.resolve_alpha(config.alpha, src.task, ds)
    ev = common.eval_dataset(src, eval_data)
    if ev is not None and _same_rows(ds, ev):
        raise BadInput(f"training data {ds.name!r} is the held-out set the student is judged on; train on other "
                       "data (e.g. data:sentences:calib or data:docstrings for text models)")
    train.seed_everything(config.seed)
    student, info = build_student(src, config.student)
    if config.freeze_embeddings and info["initialised_from"] == "the teacher":
        info["frozen"] = freeze_embedding_tables(student)
    teacher_module = src.module.eval()
    before = {"params": common.count_params(teacher_module),
              "macs": common.count_macs(teacher_module, src.example_inputs)}
    start = common.evaluate_torch(common.clone_source(src, student, "+student"), src, ev)
    settings = train.TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
                                   max_steps=config.max_steps, temperature=config.temperature, alpha=alpha,
                                   schedule=config.schedule, warmup=config.warmup, bucket=True)
    ckpt = common.default_checkpoint_dir(out_path, "distill")
    if fresh and ckpt is not None and ckpt.exists():
        shutil.rmtree(ckpt)
    run_key = f"distill:{config.digest()}:{src.name}:{ds.name}:{ds.rows}"
    hooks = HiddenStateMatch(teacher_module, student, info.get("kept_layers")) \
        if config.hidden_weight > 0 and info.get("kept_layers") else None
    try:
        fit_report = train.fit(student, teacher_module, ds, list(src.example_inputs), src.task, settings,
                               checkpoint_dir=ckpt, run_key=run_key, description=f"distill {config.student}",
                               quiet=quiet, aux_loss=None if hooks is None else hooks.loss_fn(config.hidden_weight))
    finally:
        if hooks is not None:
            hooks.remove()
    result_src = common.clone_source(src, student, f"+distill({config.student})")
    after = {"params": common.count_params(student), "macs": common.count_macs(student, src.example_inputs)}
    report: dict[str, Any] = {
        "stage": "distill", "config": config.to_dict(), "teacher": src.name, **info,
        "data": ds.name, "rows": ds.rows, "alpha": alpha,
        "params": {"teacher": before["params"], "student": after["params"],
                   "ratio": round(after["params"] / before["params"], 4)},
        "macs": {"teacher": before["macs"], "student": after["macs"],
                 "ratio": round(after["macs"] / before["macs"], 4) if before["macs"] and after["macs"] else None},
        "train": fit_report.to_dict(),
    }
    if ev is not None:
        report["eval"] = {"data": ev.name, "before_training": start,
                          **common.evaluate_torch(result_src, src, ev)}
    model = None
    if out_path is not None:
        model = common.write_output(result_src, out_path, "distill", config,
                                    {"compression": {k: report[k] for k in ("params", "macs")}}, src.name)
    return common.CompressResult(result_src, model, report)
