"""``edgeship prune`` / ``distill`` / ``qat``: compression at the PyTorch level, before export.

Each command builds the typed config the Python API takes (PruneConfig, DistillConfig, QatConfig),
calls the API and prints what changed: parameters, MACs, accuracy on held-out data — and, since MACs
are not time, points to ``edgeship bench`` for the latency the runtime measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

OUTPUT_HELP = ("output file: X.onnx exports to ONNX (parity-checked against the compressed torch module); "
               "X.pt2 saves a torch.export program (load it again as a source). Training checkpoints "
               "(safetensors) go to X.ckpt/ beside it; rerunning an interrupted command resumes from them")
DATA_HELP = ("training data: any data:NAME[:SPLIT] that `edgeship data` lists — data:digits-train (labelled digits "
             "TRAIN split), data:docstrings (~120k English sentences from installed docstrings, no data:sentences "
             "test sentence; for text models, tokenised by the model's tokenizer), data:sentences:calib, ... — an "
             ".npz with arrays named like the inputs and an optional 'labels' array, or a folder of .npy files")

PRUNE_EPILOG = """\
Structured pruning removes whole conv channels, attention heads and MLP neurons through a dependency
graph (torch-pruning), giving a smaller dense model that runs faster everywhere. Unstructured pruning
zeroes single weights: the shapes stay, so a dense runtime (ONNX Runtime CPU) runs it no faster —
measure it with `edgeship bench`. Layers whose outputs are the model's outputs (a classifier's logits,
an encoder's hidden size) are reported and skipped.

examples:
  edgeship prune zoo:digits-cnn --ratio 0.5 --finetune-epochs 10 --data data:digits-train -o digits-p50.onnx
  edgeship prune zoo:minilm --ratio 0.3 -o minilm-p30.onnx          # 30% of heads and MLP neurons
  edgeship prune zoo:digits-cnn --ratio 0.8 --unstructured -o digits-s80.onnx
  edgeship bench digits-p50.onnx --data data:digits-test --batch 64   # what the runtime makes of it
"""

DISTILL_EPILOG = """\
Students: layers=N (the teacher with N of its repeated blocks, evenly spaced with the first and the
last kept, copied from it; their embedding tables stay frozen), layers=0,2,4 (those blocks), width=F
(every prunable channel group / head at fraction F), or a model source with the teacher's inputs
(net.py:factory, zoo:NAME, model.pt2), trained from its own weights. Classifiers learn soft targets
(KL on logits / T, scaled by T²) plus hard labels (weight 1 - alpha) when the data has them;
embedding models learn the teacher's embeddings (1 - cosine + MSE) and, for layers=N students, each
kept block learns the output of the teacher block it stands for (--hidden-weight). The learning rate
warms up over --warmup of the steps, then decays linearly to 0 (--schedule). Text batches group
sentences of similar length.

examples:
  # the MiniLM recipe of the README's compression figures (5000 steps of 32 sentences):
  edgeship distill --teacher zoo:minilm --student layers=3 --data data:docstrings --max-steps 5000 \\
      -o minilm-l3.onnx
  edgeship distill --teacher zoo:minilm --student layers=3 --data data:sentences:calib --text corpus.txt \\
      --epochs 3 -o minilm-l3.onnx
  edgeship distill --teacher zoo:digits-cnn --student width=0.5 --data data:digits-train -o digits-w50.onnx
"""

QAT_EPILOG = """\
--bits 8: fake-quantized weights (per-channel int8) and activations (uint8) during fine-tuning, exported
as QuantizeLinear/DequantizeLinear pairs that ONNX Runtime runs as integer kernels. --bits 4: int4
weights (per-channel, [-8,7]) stored as INT4 behind DequantizeLinear (opset 21). The output compares
QAT with post-training quantization (PTQ) of the same model on the same data, in ONNX Runtime.

examples:
  edgeship qat zoo:digits-cnn --data data:digits-train --bits 4 --epochs 3 -o digits-qat4.onnx
  edgeship qat zoo:digits-cnn --data data:digits-train --bits 8 -o digits-qat8.onnx --json
"""


SOURCE_HELP = "the model: zoo:NAME, file.py:factory, model.pt2 or a Hugging Face folder"
TRAINING_TITLE = {"train": "training settings (the config's train: section)"}


@dataclasses.dataclass(frozen=True)
class Alias:
    """A flag that sets a config field to a constant: the names these commands had before their flags
    were generated from the configs (``--unstructured`` is ``--mode unstructured``)."""

    flag: str
    field: str
    value: object
    help: str
    exclusive: bool = False  # the aliases of one field marked so exclude each other


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    config: str  # "module:Class" of the step's config, imported when the parser is built
    help: str
    description: str
    epilog: str
    source: str  # "source" (positional) or a flag such as "--teacher"
    data_required: bool
    flags: dict[str, Any] = dataclasses.field(default_factory=dict)  # ConfigFlags options
    aliases: tuple[Alias, ...] = ()


COMMANDS = (
    Command("prune", "edgeship.compress.prune.config:PruneConfig",
            "remove channels, heads and neurons (structured) or zero weights (unstructured)",
            "Prune a PyTorch model, optionally fine-tune it, and write it as ONNX or .pt2.", PRUNE_EPILOG,
            "source", False, {"names": {"train.epochs": "finetune-epochs"}, "required": ("ratio",)},
            (Alias("--structured", "mode", "structured", "remove whole channels / heads / neurons (default): a smaller "
                   "dense model", exclusive=True),
             Alias("--unstructured", "mode", "unstructured", "zero the smallest weights globally: same shapes, "
                   "reported sparsity", exclusive=True),
             Alias("--head-dims", "heads", False, "attention: shrink every head's width instead of removing whole "
                   "heads (--no-heads)"))),
    Command("distill", "edgeship.compress.distill.config:DistillConfig",
            "train a smaller student to imitate a teacher (knowledge distillation)",
            "Distill a teacher into a smaller student and write the student.", DISTILL_EPILOG,
            "--teacher", False, {"required": ("student",), "whole": ("text",)},
            (Alias("--train-embeddings", "freeze_embeddings", False, "also train the embedding tables copied from the "
                   "teacher (--no-freeze-embeddings)"),)),
    Command("qat", "edgeship.compress.qat.config:QatConfig",
            "quantization-aware training to INT8 or INT4, compared with PTQ",
            "Fine-tune with fake quantization and export a quantized ONNX model.", QAT_EPILOG,
            "source", True, {},
            (Alias("--no-ptq", "compare_ptq", False, "skip the PTQ comparison (--no-compare-ptq)"),)),
)


def register(sub: Any) -> None:
    import importlib

    from edgeship.cli.config_flags import ConfigFlags

    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description, epilog=cmd.epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if cmd.source == "source":
            p.add_argument("source", help=SOURCE_HELP)
        else:
            p.add_argument(cmd.source, required=True, help=SOURCE_HELP.replace("the model", "the teacher"))
        module, _, cls = cmd.config.partition(":")
        flags = ConfigFlags(p, getattr(importlib.import_module(module), cls), titles=TRAINING_TITLE, **cmd.flags)
        exclusive = p.add_mutually_exclusive_group() if any(a.exclusive for a in cmd.aliases) else p
        for alias in cmd.aliases:
            (exclusive if alias.exclusive else p).add_argument(
                alias.flag, dest=flags.dest_of(alias.field), action="store_const", const=alias.value, help=alias.help)
        _add_data_args(p, data_required=cmd.data_required)
        _add_common(p)
        p.set_defaults(func=run, config_flags=flags, source_arg=cmd.source.lstrip("-"))


def _add_data_args(p: argparse.ArgumentParser, data_required: bool) -> None:
    p.add_argument("--data", required=data_required, metavar="DATA", help=DATA_HELP)
    p.add_argument("--eval-data", metavar="DATA",
                   help="held-out data for the accuracy report (default: the model's own, e.g. data:digits-test)")
    p.add_argument("--fresh", action="store_true", help="ignore checkpoints of an earlier run; start over")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP)
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a pickled whole-module source (runs code from the file)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Build the step's config from the flags, run the step on the source, print what changed."""
    from edgeship import api

    config = args.config_flags.build(args)
    result = api.compress(getattr(args, args.source_arg), config, args.data, args.output, args.eval_data,
                          quiet=args.quiet, fresh=args.fresh, trust_pickle=args.trust_pickle)
    return _finish(args, result)


def _finish(args: argparse.Namespace, result: Any) -> int:
    if args.json:
        from edgeship.cli.common import print_json

        print_json(result.to_dict())
        return 0
    for line in summary_lines(result.report, str(result.model.path) if result.model else None):
        print(line)
    return 0


def summary_lines(report: dict[str, Any], path: str | None) -> list[str]:
    """A few human lines: sizes, skipped layers, training, held-out accuracy, QAT vs PTQ."""
    lines = [f"{report['stage']}: wrote {path}" if path else f"{report['stage']}: done"]
    params, macs = report.get("params"), report.get("macs")
    if params:
        a, b = list(params.values())[:2]
        lines.append(f"  parameters {a:,} -> {b:,} ({params['ratio']:.0%})")
    if macs and macs.get("ratio") is not None:
        a, b = list(macs.values())[:2]
        lines.append(f"  MACs       {a:,} -> {b:,} ({macs['ratio']:.0%}); MACs are not time: "
                     f"measure with `edgeship bench {path or 'OUT'}`")
    sp = report.get("sparsity")
    if sp and sp.get("sparsity"):
        lines.append(f"  weight sparsity {sp['sparsity']:.0%} "
                     "(zeros are still stored and multiplied by dense runtimes)")
    for s in report.get("skipped", [])[:8]:
        lines.append(f"  skipped {s['layer']} ({s['type']}): {s['why']}")
    if len(report.get("skipped", [])) > 8:
        lines.append(f"  ... and {len(report['skipped']) - 8} more skipped layers (see --json)")
    if report.get("attention_heads"):
        heads = sorted(set(report["attention_heads"].values()))
        lines.append(f"  attention heads per layer now: {', '.join(map(str, heads))}")
    tr = report.get("finetune") or report.get("train")
    if tr:
        lines.append(f"  training: {tr['steps']} steps, loss {_f(tr['first_loss'])} -> {_f(tr['last_loss'])}"
                     + (f" (resumed at step {tr['resumed_from_step']})" if tr.get("resumed_from_step") else ""))
    ev = report.get("eval")
    if ev:
        lines.append("  held-out " + ev["data"] + ": " + _metrics(ev))
    cmp_ = report.get("comparison")
    if cmp_:
        lines.append(f"  on {cmp_.get('data')} in ONNX Runtime:")
        for name in ("qat", "ptq"):
            if name in cmp_:
                lines.append(f"    {name.upper():4} int{report['bits']}: {_metrics(cmp_[name])}, "
                             f"{cmp_[name]['size_bytes']:,} bytes")
    return lines


def _metrics(m: dict[str, Any]) -> str:
    parts = []
    if "accuracy" in m:
        parts.append(f"accuracy {m['accuracy']:.2f}% (reference {m['ref_accuracy']:.2f}%)")
    if "top1_agreement" in m and "accuracy" not in m:
        parts.append(f"top-1 agreement {m['top1_agreement']:.4f}")
    if "cosine_mean" in m:
        parts.append(f"cosine mean {m['cosine_mean']:.4f} / min {m['cosine_min']:.4f}")
    return ", ".join(parts)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run: edgeship prune|distill|qat --help")
