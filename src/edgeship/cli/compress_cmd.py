"""``edgeship prune`` / ``distill`` / ``qat``: compression at the PyTorch level, before export.

Each command builds the typed config the Python API takes (PruneConfig, DistillConfig, QatConfig),
calls the API and prints what changed: parameters, MACs, accuracy on held-out data — and, since MACs
are not time, points to ``edgeship bench`` for the latency the runtime measures.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

OUTPUT_HELP = ("output file: X.onnx exports to ONNX (parity-checked against the compressed torch module); "
               "X.pt2 saves a torch.export program (load it again as a source). Training checkpoints "
               "(safetensors) go to X.ckpt/ beside it; rerunning an interrupted command resumes from them")
DATA_HELP = ("training data: data:digits-train (labelled digits TRAIN split), data:docstrings (~120k English "
             "sentences from installed docstrings, no data:sentences test sentence; for text models), "
             "data:NAME[:SPLIT] "
             "(data:sentences:calib, data:digits-calib, ...), an .npz with arrays named like the inputs and an "
             "optional 'labels' array, or a folder of .npy files")

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


def register(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("prune", help="remove channels, heads and neurons (structured) or zero weights (unstructured)",
                       description="Prune a PyTorch model, optionally fine-tune it, and write it as ONNX or .pt2.",
                       epilog=PRUNE_EPILOG, formatter_class=fmt)
    p.add_argument("source", help="the model: zoo:NAME, file.py:factory, model.pt2 or a Hugging Face folder")
    p.add_argument("--ratio", type=float, required=True, metavar="R",
                   help="fraction removed, strictly between 0 and 1 (channels/heads/neurons, or weights)")
    p.add_argument("--importance", default="magnitude", choices=["magnitude", "taylor", "bn-scale"],
                   help="how channels are ranked (taylor needs labelled --data; bn-scale needs BatchNorm)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--structured", dest="mode", action="store_const", const="structured",
                      help="remove whole channels / heads / neurons (default): a smaller dense model")
    mode.add_argument("--unstructured", dest="mode", action="store_const", const="unstructured",
                      help="zero the smallest weights globally: same shapes, reported sparsity")
    p.set_defaults(mode="structured")
    p.add_argument("--head-dims", action="store_true",
                   help="attention: shrink every head's width instead of removing whole heads")
    p.add_argument("--round-to", type=int, default=None, metavar="N",
                   help="keep channel counts multiples of N (e.g. 8: widths the runtime's SIMD kernels like)")
    p.add_argument("--keep", action="append", default=[], metavar="LAYER",
                   help="module name never pruned (repeatable), e.g. --keep features.0")
    p.add_argument("--finetune-epochs", type=int, default=0, metavar="N",
                   help="fine-tune N epochs on --data, learning from the unpruned model (and labels)")
    _add_training_args(p, data_required=False, lr=1e-3)
    _add_schedule_args(p, schedule="constant", warmup=0.0)
    _add_common(p)
    p.set_defaults(func=run_prune)

    d = sub.add_parser("distill", help="train a smaller student to imitate a teacher (knowledge distillation)",
                       description="Distill a teacher into a smaller student and write the student.",
                       epilog=DISTILL_EPILOG, formatter_class=fmt)
    d.add_argument("--teacher", required=True, help="the teacher: zoo:NAME, file.py:factory, model.pt2, HF folder")
    d.add_argument("--student", required=True, metavar="SPEC",
                   help="layers=N | layers=I,J,K | width=F | a model source with the teacher's inputs")
    d.add_argument("--text", action="append", default=[], metavar="FILE",
                   help="extra training text, one sentence per line (text models; repeatable)")
    d.add_argument("--temperature", type=float, default=4.0, metavar="T", help="softmax temperature (default 4)")
    d.add_argument("--alpha", type=float, default=None, metavar="A",
                   help="weight of the teacher term; 1-A weights hard labels (default: 0.5 with labels, else 1)")
    d.add_argument("--epochs", type=int, default=3, metavar="N", help="training epochs (default 3)")
    d.add_argument("--hidden-weight", type=float, default=1.0, metavar="W",
                   help="layers=N students: weight of matching each kept block's output to the teacher block it "
                        "stands for (default 1; 0 turns it off)")
    d.add_argument("--train-embeddings", action="store_true",
                   help="also train the embedding tables copied from the teacher (default: frozen)")
    _add_training_args(d, data_required=False, lr=1e-3)
    _add_schedule_args(d, schedule="linear", warmup=0.06)
    _add_common(d)
    d.set_defaults(func=run_distill)

    q = sub.add_parser("qat", help="quantization-aware training to INT8 or INT4, compared with PTQ",
                       description="Fine-tune with fake quantization and export a quantized ONNX model.",
                       epilog=QAT_EPILOG, formatter_class=fmt)
    q.add_argument("source", help="the model: zoo:NAME, file.py:factory, model.pt2 or a Hugging Face folder")
    q.add_argument("--bits", type=int, choices=[8, 4], default=8, help="8: INT8 weights+activations; 4: INT4 weights")
    q.add_argument("--epochs", type=int, default=2, metavar="N", help="training epochs (default 2)")
    q.add_argument("--alpha", type=float, default=None, metavar="A",
                   help="weight of the FP32 teacher; 1-A weights hard labels (default: 0.5 with labels, else 1)")
    q.add_argument("--no-ptq", action="store_true", help="skip the PTQ comparison")
    _add_training_args(q, data_required=True, lr=1e-4)
    _add_common(q)
    q.set_defaults(func=run_qat)


def _add_training_args(p: argparse.ArgumentParser, data_required: bool, lr: float) -> None:
    p.add_argument("--data", required=data_required, metavar="DATA", help=DATA_HELP)
    p.add_argument("--eval-data", metavar="DATA",
                   help="held-out data for the accuracy report (default: the model's own, e.g. data:digits-test)")
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr:g})")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="rows per step (default 32)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N steps (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation and shuffling (default 0)")
    p.add_argument("--fresh", action="store_true", help="ignore checkpoints of an earlier run; start over")


def _add_schedule_args(p: argparse.ArgumentParser, schedule: str, warmup: float) -> None:
    p.add_argument("--schedule", default=schedule, choices=["constant", "linear", "cosine"],
                   help=f"learning rate after the warm-up: constant, or decayed to 0 linearly or along a cosine "
                        f"(default {schedule})")
    p.add_argument("--warmup", type=float, default=warmup, metavar="F",
                   help=f"fraction of the steps over which the rate ramps up from 0 (default {warmup:g})")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP)
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a pickled whole-module source (runs code from the file)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _source(args: argparse.Namespace, spec: str) -> Any:
    from edgeship.compress.common import resolve_source

    return resolve_source(spec, trust_pickle=args.trust_pickle)


def run_prune(args: argparse.Namespace) -> int:
    from edgeship.compress.prune import PruneConfig, prune

    config = PruneConfig(ratio=args.ratio, importance=args.importance, mode=args.mode, heads=not args.head_dims,
                         keep=tuple(args.keep), round_to=args.round_to, finetune_epochs=args.finetune_epochs,
                         lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps, seed=args.seed,
                         schedule=args.schedule, warmup=args.warmup)
    result = prune(_source(args, args.source), config, data=args.data, out=args.output, eval_data=args.eval_data,
                   quiet=args.quiet, fresh=args.fresh)
    return _finish(args, result)


def run_distill(args: argparse.Namespace) -> int:
    from edgeship.compress.distill import DistillConfig, distill

    config = DistillConfig(student=args.student, temperature=args.temperature, alpha=args.alpha, epochs=args.epochs,
                           lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps, text=tuple(args.text),
                           hidden_weight=args.hidden_weight, schedule=args.schedule, warmup=args.warmup,
                           freeze_embeddings=not args.train_embeddings, seed=args.seed)
    result = distill(_source(args, args.teacher), config, data=args.data, out=args.output,
                     eval_data=args.eval_data, quiet=args.quiet, fresh=args.fresh)
    return _finish(args, result)


def run_qat(args: argparse.Namespace) -> int:
    from edgeship.compress.qat import QatConfig, qat

    config = QatConfig(bits=args.bits, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, alpha=args.alpha,
                       max_steps=args.max_steps, compare_ptq=not args.no_ptq, seed=args.seed)
    result = qat(_source(args, args.source), config, data=args.data, out=args.output, eval_data=args.eval_data,
                 quiet=args.quiet, fresh=args.fresh)
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
