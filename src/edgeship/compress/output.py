"""How a compressed torch module becomes a file the rest of the pipeline takes, and where its training
checkpoints go.

Outputs (chosen by the suffix of ``out``):
- ``X.onnx``: exported to ONNX by the project exporter, which checks it against the torch module;
- ``X.pt2``: a ``torch.export`` program (``torch.export.save``), loadable without pickle.
Both get an edgeship sidecar (provenance: which stage made it, from what, with which config).
Training checkpoints are safetensors in ``X.ckpt/`` beside the output (see ``edgeship.compress.train``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from edgeship.core.artifact import IOSpec, Model, Step, now
from edgeship.core.config import Config
from edgeship.core.errors import BadInput, GateFailed
from edgeship.sources.torch_source import TorchSource

OUTPUT_SUFFIXES = (".onnx", ".pt2")


def check_output(out: str | Path | None) -> Path | None:
    if out is None:
        return None
    p = Path(out)
    if p.suffix not in OUTPUT_SUFFIXES:
        raise BadInput(f"output {str(p)!r}: give a .onnx file (exported with a parity check) or a .pt2 file "
                       "(torch.export program)")
    from edgeship.core.atomic import check_output_path

    return check_output_path(p)


def checkpoint_dir(out: Path | None, fresh: bool = False) -> Path | None:
    """``OUT.ckpt/`` beside the output, where an interrupted run resumes from; emptied when ``fresh``."""
    if out is None:
        return None
    folder = out.with_name(out.name + ".ckpt")
    if fresh and folder.exists():
        shutil.rmtree(folder)
    return folder


def write_output(source: TorchSource, out: Path, stage: str, config: Config, facts: dict[str, Any],
                 origin: str) -> Model:
    """Write the compressed module as ``out`` (.onnx with parity check, or .pt2) with a sidecar whose
    provenance starts with this stage."""
    step = Step(stage=stage, source=origin, config=config.to_dict(), at=now())
    if out.suffix == ".pt2":
        io = save_pt2(source, out)
        return Model(out, "pt2", io, (step,), facts).save()
    exported = export_onnx(source, out)
    return dataclasses.replace(exported, provenance=(step, *exported.provenance),
                               facts={**exported.facts, **facts}).save()


def export_onnx(source: TorchSource, out: Path) -> Model:
    """ONNX through the project exporter (parity-checked against the torch module)."""
    from edgeship.export.exporter import export

    return export(source, out)


def check_onnx_parity(source: TorchSource, path: Path) -> dict[str, Any]:
    """The ONNX file against the torch module on its example inputs, under the one FP32 tolerance
    (check/tolerances.yaml); GateFailed when it computes something else. Returns the metrics."""
    from edgeship.check.judge import judge
    from edgeship.targets.onnxruntime.runner import OrtRunner

    feeds = {k: v.numpy() for k, v in source.example_inputs.items()}
    with OrtRunner(path) as runner:
        outputs = runner.infer(feeds)
    verdict = judge([source.forward_numpy(feeds)], [outputs], precision="fp32", name=str(path))
    if not verdict.passed:
        raise GateFailed(f"{str(path)!r} differs from the torch module ({verdict.why}); the export is not faithful "
                         "— report it with the model")
    return verdict.summary


def save_pt2(source: TorchSource, out: Path) -> IOSpec:
    """``torch.export`` the module (dynamic axes kept) and save it atomically."""
    import torch

    from edgeship.core.atomic import atomic_path

    args = []
    shapes = []
    for name, value in source.example_inputs.items():
        axes = {int(a) for a in source.dynamic_axes.get(name, {})}
        for a in axes:  # a size-1 example would be specialised to 1: show export a size of 2
            if value.shape[a] == 1:
                value = torch.cat([value, value], dim=a)
        args.append(value)
        shapes.append({a: torch.export.Dim.AUTO for a in axes} or None)
    try:
        program = torch.export.export(source.module.eval(), tuple(args), dynamic_shapes=tuple(shapes), strict=False)
    except Exception as exc:  # torch.export errors are long; the first line names the construct
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"torch.export cannot capture the compressed model: {first}; write -o X.onnx instead") from None
    with atomic_path(out) as tmp:
        torch.export.save(program, str(tmp))
    return source.io
