"""Students, registered by spec scheme: ``layers=N`` / ``layers=I,J,K`` (the teacher with fewer of its
repeated blocks), ``width=F`` (the teacher at a fraction of its width); anything else is a model
source trained from its own initialisation.

- ``layers=3`` — the teacher with 3 of its repeated blocks (evenly spaced, first and last kept: 0,3,5
  of 6), weights copied from the teacher; ``layers=0,2,4`` names them;
- ``width=0.5`` — the teacher with every prunable channel group / attention head / MLP layer at half
  width (structured magnitude pruning), weights copied from the kept channels;
- anything else is a model source (``net.py:factory``, ``zoo:NAME``, ``model.pt2``) with the
  teacher's inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry
from edgeship.sources.torch_source import TorchSource

# A builder gets (teacher TorchSource, value after "=") and returns a student torch module.
STUDENTS: Registry[Callable[[TorchSource, str], Any]] = Registry("student spec")


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
def _fewer_layers(teacher: TorchSource, value: str) -> Any:
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
def _narrower(teacher: TorchSource, value: str) -> Any:
    from edgeship.compress.prune.config import PruneConfig
    from edgeship.compress.prune.step import prune

    try:
        width = float(value)
    except ValueError:
        raise BadInput(f"student width={value}: give the kept fraction, e.g. width=0.5") from None
    if not 0.0 < width < 1.0:
        raise BadInput(f"student width={value}: give a fraction strictly between 0 and 1")
    return prune(teacher, PruneConfig(ratio=round(1.0 - width, 6)), quiet=True).source.module


def build_student(teacher: TorchSource, spec: str) -> tuple[Any, dict[str, Any]]:
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


def _check_shapes(teacher: TorchSource, student: Any) -> None:
    import torch

    args = tuple(teacher.example_inputs.values())
    with torch.inference_mode():
        t, s = teacher.module(*args), student.eval()(*args)
    t = t[0] if isinstance(t, tuple | list) else t
    s = s[0] if isinstance(s, tuple | list) else s
    if tuple(t.shape) != tuple(s.shape):
        raise BadInput(f"the student's output has shape {list(s.shape)}, the teacher's {list(t.shape)}; "
                       "a student must produce the teacher's output shape")


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
