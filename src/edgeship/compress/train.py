"""The training loop shared by prune (fine-tune), distill and QAT.

All three are the same thing seen from afar: a *student* module learns from a frozen *teacher*
(the original model) on a data set, with an objective picked by the task (KL on temperature-scaled
logits plus hard labels for classifiers, cosine + MSE for embedding models). This module holds:

- ``fit()``: seeded, shuffled mini-batches, a rich progress bar showing the loss (stderr),
  safetensors checkpoints (model + optimizer state) written atomically, automatic resume from the
  last checkpoint of the same run, and a stop with a clear error on a NaN/Inf loss that keeps the
  last good checkpoint;
- ``collate()``: batches of feeds whose variable-length axes are right-padded with zeros (for
  token ids and attention masks zero means padding, so a masked mean-pool ignores it);
- the learning-rate schedules (``SCHEDULES``, by the names ``TrainSettings.schedule`` takes) and the
  objectives by task (``OBJECTIVES``).

The settings themselves are ``edgeship.compress.train_settings.TrainSettings``. torch is imported
inside functions: importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.compress.train_settings import TrainSettings
from edgeship.core import atomic
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry

Feeds = dict[str, np.ndarray]


SMALL_MODEL_PARAMS = 1_000_000


class TrainingDiverged(BadInput):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# -- seeding -----------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- batching ----------------------------------------------------------------------------------------
def collate(samples: list[Feeds]) -> Feeds:
    """Stack samples (each with a leading batch dim) into one feed, right-padding uneven axes with 0."""
    out: Feeds = {}
    for name in samples[0]:
        arrays = [np.asarray(s[name]) for s in samples]
        rank = arrays[0].ndim
        if any(a.ndim != rank for a in arrays):
            raise BadInput(f"input {name!r} has samples of different ranks; every sample needs the same rank")
        target = [max(a.shape[d] for a in arrays) for d in range(1, rank)]
        padded = []
        for a in arrays:
            pad = [(0, 0)] + [(0, t - s) for t, s in zip(target, a.shape[1:], strict=True)]
            padded.append(np.pad(a, pad) if any(p[1] for p in pad) else a)
        out[name] = np.concatenate(padded)
    return out


def split_rows(ds: Dataset) -> tuple[list[Feeds], np.ndarray | None]:
    """One feed per row (samples may hold several rows), with its label."""
    rows: list[Feeds] = []
    for s in ds.samples:
        n = next(iter(s.values())).shape[0]
        rows.extend({k: v[i:i + 1] for k, v in s.items()} for i in range(n))
    labels = None if ds.labels is None else np.asarray(ds.labels).reshape(-1)
    if labels is not None and len(labels) != len(rows):
        raise BadInput(f"data {ds.name!r}: {len(labels)} labels for {len(rows)} rows; give one label per row")
    return rows, labels


BUCKET_BATCHES = 50  # bucketing sorts by length within windows of this many batches


def batches(ds: Dataset, batch_size: int, epoch: int, seed: int,
            bucket: bool = False) -> Iterator[tuple[Feeds, np.ndarray | None]]:
    """Shuffled mini-batches; the order depends only on (seed, epoch), so a resumed run sees the same.

    ``bucket``: rows are sorted by size within random windows of ``BUCKET_BATCHES`` batches, cut into
    batches and the batches shuffled again, so a batch holds rows of similar length (measured on
    docstring sentences for MiniLM: about half the padded tokens of random batches) while every
    batch still comes from anywhere in the data."""
    rows, labels = split_rows(ds)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(rows))
    if bucket:
        sizes = np.array([max(v.size for v in r.values()) for r in rows])
        window = batch_size * BUCKET_BATCHES
        groups = []
        for start in range(0, len(order), window):
            part = order[start:start + window]
            part = part[np.argsort(sizes[part], kind="stable")]
            groups.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
        chunks = [groups[i] for i in rng.permutation(len(groups))]
    else:
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in chunks:
        yield collate([rows[i] for i in idx]), (None if labels is None else labels[idx])


def steps_per_epoch(ds: Dataset, batch_size: int) -> int:
    return math.ceil(ds.rows / batch_size)


# -- learning-rate schedules ------------------------------------------------------------------------
# A schedule maps (progress after warm-up in [0, 1]) to a factor of the peak rate; one per name of
# edgeship.compress.train_settings.Schedule (a test checks they match).
SCHEDULES: Registry[Callable[[float], float]] = Registry("learning-rate schedule")


@SCHEDULES.register("constant")
def _constant(progress: float) -> float:
    return 1.0


@SCHEDULES.register("linear")
def _linear(progress: float) -> float:
    return max(0.0, 1.0 - progress)


@SCHEDULES.register("cosine")
def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def lr_at(step: int, total: int, settings: TrainSettings) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``: linear warm-up over the first
    ``warmup`` fraction, then the schedule's decay. A function of the step only, so resuming from a
    checkpoint continues the same curve."""
    warm = round(settings.warmup * total)
    if step < warm:
        return settings.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return settings.lr * SCHEDULES.get(settings.schedule)(progress)


# -- objectives --------------------------------------------------------------------------------------
# An objective maps (student output, teacher output, labels or None, settings) to a scalar loss.
Objective = Callable[[Any, Any, Any, TrainSettings], Any]
OBJECTIVES: Registry[Objective] = Registry("training objective")


@OBJECTIVES.register("classification")
def _kd_classification(student: Any, teacher: Any, labels: Any, s: TrainSettings) -> Any:
    """Hinton KD: alpha·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha)·CE(s, labels)."""
    import torch.nn.functional as F

    t = s.temperature
    loss = s.alpha * F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                              reduction="batchmean", log_target=True) * t * t
    if labels is not None and s.alpha < 1.0:
        loss = loss + (1.0 - s.alpha) * F.cross_entropy(student, labels)
    return loss


@OBJECTIVES.register("embedding")
def _embedding(student: Any, teacher: Any, labels: Any, s: TrainSettings) -> Any:
    """1 − cosine (direction, what retrieval uses) + MSE (scale), per row."""
    import torch.nn.functional as F

    st, te = student.flatten(1), teacher.flatten(1)
    return (1.0 - F.cosine_similarity(st, te, dim=1)).mean() + F.mse_loss(st, te) * st.shape[1]


@OBJECTIVES.register("other")
def _mse(student: Any, teacher: Any, labels: Any, s: TrainSettings) -> Any:
    import torch.nn.functional as F

    return F.mse_loss(student, teacher)


def resolve_alpha(alpha: float | None, task: str, ds: Dataset, option: str = "--alpha") -> float:
    """The teacher weight: given, or 0.5 for labelled classification data, else 1 (teacher only)."""
    has_labels = ds.labels is not None
    if alpha is None:
        return 0.5 if task == "classification" and has_labels else 1.0
    if alpha < 1.0 and not has_labels:
        raise BadInput(f"{option} {alpha} gives weight {1 - alpha:g} to hard labels but data {ds.name!r} has no "
                       f"labels; give labelled data (an .npz with a 'labels' array) or {option} 1")
    if alpha < 1.0 and task != "classification":
        raise BadInput(f"{option} {alpha}: hard labels apply to classifiers only (this model's task is {task!r}); "
                       f"use {option} 1")
    return alpha


# -- checkpoints -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CheckpointState:
    step: int
    epoch: int
    loss: float | None
    run_key: str


def _ckpt_files(folder: Path) -> tuple[Path, Path, Path]:
    return folder / "model.safetensors", folder / "optimizer.safetensors", folder / "state.json"


def save_checkpoint(folder: Path, module: Any, optimizer: Any, state: CheckpointState) -> None:
    """model + optimizer tensors as safetensors, progress as JSON; each file replaced atomically and the
    JSON last, so a crash mid-way leaves the previous consistent checkpoint (the JSON names its step)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model_f, optim_f, state_f = _ckpt_files(folder)
    tensors = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    with atomic.atomic_path(model_f) as tmp:
        save_file(tensors, str(tmp))
    with atomic.atomic_path(optim_f) as tmp:
        save_file(opt_tensors, str(tmp))
    atomic.write_json(state_f, {**dataclasses.asdict(state), "optimizer": opt_meta})


def load_checkpoint(folder: Path, module: Any, optimizer: Any, run_key: str) -> CheckpointState | None:
    """Restore a checkpoint written by the same run (same model, data and settings), else None."""
    from safetensors.torch import load_file

    model_f, optim_f, state_f = _ckpt_files(folder)
    if not (model_f.is_file() and optim_f.is_file() and state_f.is_file()):
        return None
    try:
        meta = json.loads(state_f.read_text())
    except json.JSONDecodeError:
        return None
    if meta.get("run_key") != run_key:
        return None  # another run's checkpoint: do not mix
    try:
        tensors = load_file(str(model_f))
        module.load_state_dict(tensors, strict=True)
        _restore_optimizer(optimizer, load_file(str(optim_f)), meta["optimizer"])
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise BadInput(f"checkpoint in {str(folder)!r} cannot be restored ({type(exc).__name__}); "
                       "delete the folder or pass --fresh") from None
    return CheckpointState(int(meta["step"]), int(meta["epoch"]), meta.get("loss"), run_key)


def _flatten_optimizer(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if hasattr(v, "detach"):
                tensors[f"{pid}.{k}"] = v.detach().contiguous().clone().reshape(v.shape)
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: Any, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, _, name = key.partition(".")
        state.setdefault(int(pid), {})[name] = v
    for pid, sc in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# -- the loop ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class FitReport:
    steps: int
    epochs: int
    first_loss: float | None
    last_loss: float | None
    resumed_from_step: int
    checkpoint: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def first_output(module: Any, feeds: Feeds, input_names: list[str]) -> Any:
    """The module's first output on numpy feeds, as a tensor (dicts, tuples and HF outputs unwrapped)."""
    import torch

    args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names]
    out = module(*args)
    if isinstance(out, dict):
        out = next(iter(out.values()))
    elif isinstance(out, tuple | list):
        out = out[0]
    elif hasattr(out, "to_tuple"):  # Hugging Face ModelOutput
        out = out.to_tuple()[0]
    return out


def fit(student: Any, teacher: Any, data: Dataset, input_names: list[str], task: str,
        settings: TrainSettings, checkpoint_dir: Path | None = None, run_key: str = "",
        description: str = "training", quiet: bool = False,
        on_step: Callable[[int, float], None] | None = None,
        aux_loss: Callable[[], Any] | None = None) -> FitReport:
    """Train ``student`` to imitate ``teacher`` (and the labels) on ``data``; resumable and NaN-safe.

    ``run_key`` identifies the run (model, data, settings): a checkpoint from another run is ignored.
    ``settings.alpha`` None is resolved by :func:`resolve_alpha` (0.5 for labelled classifier data, else 1).
    ``on_step(step, loss)`` is called after each step (tests use it to interrupt a run).
    ``aux_loss()`` is added to the objective after both forward passes (e.g. matching hidden states
    captured by hooks).
    """
    import torch

    objective = OBJECTIVES.get(task if task in OBJECTIVES else "other")
    if settings.alpha is None:
        settings = dataclasses.replace(settings, alpha=resolve_alpha(None, task, data))
    if task == "classification" and settings.alpha < 1.0 and data.labels is None:
        raise BadInput(f"data {data.name!r} has no labels but hard labels are weighted ({1 - settings.alpha:g}); "
                       "give labelled data or set alpha to 1")
    seed_everything(settings.seed)
    threads_before = torch.get_num_threads()
    # Small models spend their time in per-op overhead: extra threads only add synchronisation, which
    # on a busy 2-core machine measured 6× slower (24 s vs 4 s for two digits-CNN epochs).
    threads = settings.threads or (1 if sum(p.numel() for p in student.parameters()) < SMALL_MODEL_PARAMS
                                   else threads_before)
    torch.set_num_threads(threads)
    try:
        return _fit(student, teacher, data, input_names, objective, settings, checkpoint_dir, run_key, description,
                    quiet, on_step, aux_loss)
    finally:
        torch.set_num_threads(threads_before)


def _fit(student: Any, teacher: Any, data: Dataset, input_names: list[str], objective: Objective,
         settings: TrainSettings, checkpoint_dir: Path | None, run_key: str, description: str, quiet: bool,
         on_step: Callable[[int, float], None] | None, aux_loss: Callable[[], Any] | None) -> FitReport:
    import time

    import torch

    student.train()
    if teacher is not None:
        teacher.eval()
    params = [p for p in student.parameters() if p.requires_grad]
    if not params:
        raise BadInput("the student has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    per_epoch = steps_per_epoch(data, settings.batch_size)
    total = per_epoch * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)

    start_step = 0
    if checkpoint_dir is not None:
        restored = load_checkpoint(checkpoint_dir, student, optimizer, run_key)
        if restored is not None:
            start_step = restored.step
            if not quiet and start_step:
                print(f"resuming {description} from the checkpoint at step {start_step}/{total} "
                      f"({checkpoint_dir})", file=sys.stderr)

    t0 = time.perf_counter()
    first_loss: float | None = None
    last_loss: float | None = None
    step = 0
    with _progress(description, total, quiet) as advance:
        advance(start_step, None)
        for epoch in range(settings.epochs):
            for feeds, labels in batches(data, settings.batch_size, epoch, settings.seed, settings.bucket):
                if step >= total:
                    break
                if step < start_step:  # already trained before the interruption
                    step += 1
                    continue
                out = first_output(student, feeds, input_names)
                with torch.no_grad():
                    ref = first_output(teacher, feeds, input_names) if teacher is not None else None
                y = None if labels is None else torch.from_numpy(np.asarray(labels).astype(np.int64))
                loss = objective(out, ref, y, settings)
                if aux_loss is not None:
                    loss = loss + aux_loss()
                value = float(loss.detach())
                if not math.isfinite(value):
                    where = (f"the last good checkpoint (step {_last_saved(checkpoint_dir)}) is kept in "
                             f"{str(checkpoint_dir)!r}" if checkpoint_dir is not None else "no checkpoint was kept")
                    raise TrainingDiverged(f"{description}: the loss became {value} at step {step + 1} "
                                           f"(epoch {epoch + 1}); {where}; lower the learning rate "
                                           f"(now {settings.lr:g}) or check the data for extreme values")
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, settings)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                optimizer.step()
                step += 1
                first_loss = value if first_loss is None else first_loss
                last_loss = value
                advance(1, value)
                if checkpoint_dir is not None and (step % settings.checkpoint_every == 0 or step == total
                                                   or step % per_epoch == 0):
                    save_checkpoint(checkpoint_dir, student, optimizer,
                                    CheckpointState(step, epoch, value, run_key))
                if on_step is not None:
                    on_step(step, value)
            if step >= total:
                break
    student.eval()
    return FitReport(steps=step, epochs=settings.epochs, first_loss=first_loss, last_loss=last_loss,
                     resumed_from_step=start_step, checkpoint=str(checkpoint_dir) if checkpoint_dir else None,
                     seconds=round(time.perf_counter() - t0, 3))


def _last_saved(folder: Path | None) -> str:
    if folder is None:
        return "none"
    try:
        return str(json.loads((folder / "state.json").read_text())["step"])
    except (OSError, json.JSONDecodeError, KeyError):
        return "none"


class _progress:
    """A rich progress bar on stderr with the running loss; silent when ``quiet``."""

    def __init__(self, description: str, total: int, quiet: bool) -> None:
        self.description, self.total, self.quiet = description, total, quiet
        self._prog: Any = None

    def __enter__(self) -> Callable[[int, float | None], None]:
        from edgeship.core.progress import is_quiet

        if self.quiet or is_quiet():
            return lambda n, loss: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                              console=console, transient=not console.is_terminal)
        self._prog.__enter__()
        task = self._prog.add_task(self.description, total=self.total, loss="-")

        def advance(n: int, loss: float | None) -> None:
            self._prog.update(task, advance=n, **({"loss": f"{loss:.4f}"} if loss is not None else {}))

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._prog is not None:
            self._prog.__exit__(*exc)
