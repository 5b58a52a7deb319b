"""What prune, distill and QAT share: resolving sources and data, the result they return, and how a
compressed torch module becomes a file the rest of the pipeline takes.

Outputs (chosen by the suffix of ``out``):
- ``X.onnx``: exported to ONNX and checked against the torch module on its example inputs (parity);
- ``X.pt2``: a ``torch.export`` program (``torch.export.save``), loadable without pickle.
Both get an edgeship sidecar (provenance: which stage made it, from what, with which config).
Training checkpoints are safetensors (see ``edgeship.compress.train``).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import Model, Step, now
from edgeship.core.config import Config
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput, GateFailed
from edgeship.core.registry import Registry

OUTPUT_SUFFIXES = (".onnx", ".pt2")
PARITY_RTOL = 1e-3  # ONNX vs torch, relative to the output scale; FP32 export differences are ~1e-6


@dataclasses.dataclass
class CompressResult:
    """What a compression step produced: the module in memory, the file (when asked) and a report."""

    source: Any  # TorchSource wrapping the compressed module (eval mode)
    model: Model | None  # the written file (.onnx / .pt2), None when no output path was given
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": None if self.model is None else str(self.model.path), **self.report}


def resolve_source(spec: Any, trust_pickle: bool = False) -> Any:
    """A TorchSource from a TorchSource, or from a spec (zoo:NAME, file.py:factory, .pt2, HF folder)."""
    from edgeship.zoo.base import TorchSource

    if isinstance(spec, TorchSource):
        return spec
    text = str(spec)
    if text.endswith(".onnx"):
        raise BadInput(f"{text!r} is an ONNX file; compression works on the PyTorch model "
                       "(zoo:NAME, file.py:factory, model.pt2 or a Hugging Face folder)")
    from edgeship.export.sources import load_source

    loaded = load_source(text, trust_pickle=trust_pickle)
    if not isinstance(loaded, TorchSource):
        raise BadInput(f"{text!r} is not a PyTorch model; compression works on zoo:NAME, file.py:factory, "
                       "model.pt2 or a Hugging Face folder")
    return loaded


def clone_source(source: Any, module: Any, name_suffix: str) -> Any:
    """A TorchSource like ``source`` around another module (the compressed one)."""
    return dataclasses.replace(source, name=f"{source.name}{name_suffix}", module=module.eval(),
                               extra=dict(source.extra))


def copy_module(module: Any) -> Any:
    return copy.deepcopy(module)


DATA_HOOKS: Registry[Any] = Registry("training data")


@DATA_HOOKS.register("data:digits-train")
def _digits_train(source: Any, limit: int | None) -> Dataset:
    from edgeship.compress.train import digits_train_set

    return digits_train_set(source.io, limit)


@DATA_HOOKS.register("data:docstrings")
def _docstrings(source: Any, limit: int | None) -> Dataset:
    """English sentences from the installed Python code's docstrings (about 120k with site-packages,
    built once in about 2 minutes and cached), data:sentences:calib first; data:sentences' modules and
    every held-out test sentence are left out. Tokenised by the source's tokenizer."""
    import sys

    from edgeship.compress.distill.corpus import docstring_corpus

    if source.extra.get("tokenizer") is None:
        raise BadInput(f"data:docstrings is text; {source.name} has no tokenizer to read it (give --data as an .npz "
                       "of its inputs)")
    print("data:docstrings: reading docstrings of the installed Python code (cached after the first run)",
          file=sys.stderr)
    sentences = docstring_corpus(site_packages=True)
    return text_dataset(source, sentences[:limit] if limit else sentences, "data:docstrings")


def load_training_data(spec: str | Dataset, source: Any, limit: int | None = None,
                       text_files: tuple[str, ...] = ()) -> Dataset:
    """Training data fitted to the source's inputs: ``data:NAME[:SPLIT]``, .npz, .npy folder, plus
    ``data:digits-train`` (the labelled digits TRAIN split) and text files tokenised by the source."""
    from edgeship.core.data import load_data

    if isinstance(spec, Dataset):
        ds = spec
    elif str(spec) in DATA_HOOKS:
        ds = DATA_HOOKS.get(str(spec))(source, limit)
    else:
        ds = load_data(str(spec), source.io, limit=limit)
    if text_files:
        ds = _add_text(ds, source, text_files)
    if not ds.samples:
        raise BadInput(f"data {ds.name!r} is empty; give at least one sample")
    return ds


def text_dataset(source: Any, sentences: list[str], name: str) -> Dataset:
    """Tokenise each sentence alone (natural length) with the source's tokenizer."""
    tok = source.extra.get("tokenizer")
    if tok is None:
        raise BadInput(f"{source.name} has no tokenizer, so text files cannot feed it; "
                       "give --data as an .npz of its inputs instead")
    names = list(source.example_inputs)
    samples = []
    max_len = int(source.extra.get("max_length", 128))
    # Tokenised in chunks (a fast tokenizer works through a list in parallel), each sentence unpadded.
    chunk = 1024 if _batch_capable(tok) else 1
    for start in range(0, len(sentences), chunk):
        part = sentences[start:start + chunk]
        enc = tok(part if chunk > 1 else part[0], return_tensors=None if chunk > 1 else "np", truncation=True,
                  max_length=max_len)
        for i in range(len(part)):
            row = {n: (np.asarray(enc[n][i])[None] if chunk > 1 else np.asarray(enc[n])) for n in names if n in enc}
            samples.append({n: v.astype(source.example_inputs[n].numpy().dtype) for n, v in row.items()})
    missing = [n for n in names if n not in samples[0]]
    if missing:
        raise BadInput(f"the tokenizer of {source.name} does not produce input(s) {', '.join(missing)}")
    return Dataset(name, samples)


def _batch_capable(tok: Any) -> bool:
    """A Hugging Face tokenizer (takes a list and returns lists); other callables get one text at a time."""
    return bool(getattr(tok, "is_fast", False))


def _add_text(ds: Dataset | None, source: Any, files: tuple[str, ...]) -> Dataset:
    from edgeship.compress.train import read_text_file

    sentences = [line for f in files for line in read_text_file(f)]
    extra = text_dataset(source, sentences, "+".join(files))
    if ds is None:
        return extra
    if ds.labels is not None:
        raise BadInput("text files carry no labels but the data set has labels; train on one or the other")
    return Dataset(f"{ds.name}+text", ds.samples + extra.samples, None)


# -- measuring ---------------------------------------------------------------------------------------
def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def count_macs(module: Any, example_inputs: dict[str, Any]) -> int | None:
    """Multiply-accumulates of one forward on the example inputs (torch-pruning's counter)."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None
    args = tuple(example_inputs.values())
    try:
        macs, _ = tp.utils.count_ops_and_params(module, args)
    except Exception:  # the counter traces hooks; some exotic modules defeat it, which is not fatal
        return None
    return int(macs)


def weight_sparsity(module: Any) -> dict[str, Any]:
    """Zeros among the weights of Conv/Linear layers (what unstructured pruning produces)."""
    import torch

    zeros = total = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d | torch.nn.Linear):
            w = m.weight.detach()
            zeros += int((w == 0).sum())
            total += w.numel()
    return {"weight_zeros": zeros, "weights": total, "sparsity": round(zeros / total, 4) if total else 0.0}


# -- writing -----------------------------------------------------------------------------------------
def check_output(out: str | Path | None) -> Path | None:
    if out is None:
        return None
    p = Path(out)
    if p.suffix not in OUTPUT_SUFFIXES:
        raise BadInput(f"output {str(p)!r}: give a .onnx file (exported with a parity check) or a .pt2 file "
                       "(torch.export program)")
    from edgeship.core.atomic import check_output_path

    return check_output_path(p)


def default_checkpoint_dir(out: Path | None, stage: str) -> Path | None:
    """``OUT.ckpt/`` beside the output: an interrupted run resumes from it."""
    return None if out is None else out.with_name(out.name + ".ckpt")


def write_output(source: Any, out: Path, stage: str, config: Config, facts: dict[str, Any],
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


def export_onnx(source: Any, out: Path) -> Model:
    """ONNX through the project exporter (parity-checked against the torch module)."""
    from edgeship.export.exporter import export

    return export(source, out)


def check_onnx_parity(source: Any, path: Path, rtol: float = PARITY_RTOL) -> float:
    """Relative max error of the ONNX file against the torch module on the example inputs."""
    import onnxruntime as ort

    feeds = {k: v.numpy() for k, v in source.example_inputs.items()}
    ref = source.forward_numpy(feeds)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    outs = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
    worst = 0.0
    for r, o in zip(ref.values(), outs, strict=False):
        scale = max(float(np.abs(r).max()), 1e-6)
        worst = max(worst, float(np.abs(r - o).max()) / scale)
    if worst > rtol:
        raise GateFailed(f"{str(path)!r} differs from the torch module by {worst:.2e} (relative); "
                         "the export is not faithful — report it with the model")
    return worst


def save_pt2(source: Any, out: Path) -> Any:
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
    args = tuple(args)
    try:
        program = torch.export.export(source.module.eval(), args, dynamic_shapes=tuple(shapes), strict=False)
    except Exception as exc:  # torch.export errors are long; the first line names the construct
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"torch.export cannot capture the compressed model: {first}; write -o X.onnx instead") from None
    with atomic_path(out) as tmp:
        torch.export.save(program, str(tmp))
    return source.io


def eval_dataset(source: Any, spec: str | Dataset | None, limit: int | None = None) -> Dataset | None:
    """The held-out data to report accuracy on: given, or the source's own."""
    from edgeship.core.data import load_data

    spec = spec or source.eval_data
    if spec is None:
        return None
    if isinstance(spec, Dataset):
        return spec
    return load_data(spec, source.io, limit=limit)


def evaluate_torch(source: Any, reference: Any, ds: Dataset | None) -> dict[str, Any]:
    """Accuracy (with labels) / agreement / cosine of ``source`` against ``reference`` on ``ds``."""
    if ds is None:
        return {}
    ref_outs = [reference.forward_numpy(s)[reference.output_names[0]] for s in ds.samples]
    outs = [source.forward_numpy(s)[source.output_names[0]] for s in ds.samples]
    return output_summary(ref_outs, outs, ds.labels, source.task)


def output_summary(ref: list[np.ndarray], cand: list[np.ndarray], labels: np.ndarray | None,
                   task: str) -> dict[str, Any]:
    from edgeship.check.metrics import output_metrics

    m = output_metrics(ref, cand, labels=labels, classifier=task == "classification")
    keep = ("accuracy", "ref_accuracy", "accuracy_drop", "top1_agreement", "cosine_mean", "cosine_min", "max_abs")
    return {k: (round(float(v), 6) if isinstance(v, float | np.floating) else v) for k, v in m.items() if k in keep}
