"""The compression variants ``edgeship optimize`` builds from the PyTorch source: prune, distill, QAT.

Each runs the Python API with a default config on the recipe's calibration data (which for the
bundled models carries labels where the task has them) and writes ``ctx.out`` as ONNX; the pipeline
then checks and benchmarks it like every other variant. They need a PyTorch source: an ONNX-only
recipe gets a one-line error naming the fix.

Registered names (pass them in a recipe's ``variants``):
- ``prune-30`` / ``prune-50``: structured pruning (channels, heads, MLP neurons) + 3 fine-tune epochs;
- ``distill-half``: a student with half the teacher's blocks (``layers=N/2``), or half its width
  when it has no block stack, trained 3 epochs;
- ``qat-int8`` / ``qat-int4``: quantization-aware fine-tuning, 3 epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.pipeline.variants import VariantContext, register_variant


def _needs_source(ctx: VariantContext, name: str) -> Any:
    if ctx.source is None:
        raise BadInput(f"variant {name!r} compresses the PyTorch model; give the recipe a PyTorch source "
                       "(zoo:NAME, file.py:factory, .pt2) instead of an ONNX file")
    return ctx.source


def build_compressed(ctx: VariantContext, config: Config, name: str) -> Any:
    """Run the step ``config`` (PruneConfig, DistillConfig or QatConfig) for the pipeline."""
    from edgeship.compress.steps import compress

    source = _needs_source(ctx, name)
    result = compress(source, config, data=ctx.calib(), out=ctx.out, eval_data=None, quiet=True)
    return result.model


def _variant(name: str, precision: str, make: Callable[[VariantContext], Config], what: str) -> None:
    def build(ctx: VariantContext) -> Any:
        return build_compressed(ctx, make(ctx), name)

    register_variant(name, precision, what)(build)


def _prune(ratio: float) -> Callable[[VariantContext], Config]:
    def make(ctx: VariantContext) -> Config:
        from edgeship.compress.prune import PruneConfig

        return PruneConfig(ratio=ratio, finetune_epochs=3, lr=1e-3 if ctx.task == "classification" else 1e-4)

    return make


def _distill_half(ctx: VariantContext) -> Config:
    from edgeship.compress.distill import DistillConfig, repeated_blocks

    source = _needs_source(ctx, "distill-half")
    try:
        _, blocks = repeated_blocks(source.module)
        student = f"layers={max(1, len(blocks) // 2)}"
    except BadInput:
        student = "width=0.5"
    # DistillConfig's own rate and schedule (chosen by measurement on MiniLM and the digits CNN)
    return DistillConfig(student=student, epochs=3)


def _qat(bits: int) -> Callable[[VariantContext], Config]:
    def make(ctx: VariantContext) -> Config:
        from edgeship.compress.qat import QatConfig

        return QatConfig(bits=bits, epochs=3, lr=3e-4 if bits == 4 else 1e-4, compare_ptq=False)  # type: ignore[arg-type]

    return make


_variant("prune-30", "fp32", _prune(0.3), "structured pruning, 30% of channels/heads/neurons, 3 fine-tune epochs")
_variant("prune-50", "fp32", _prune(0.5), "structured pruning, 50% of channels/heads/neurons, 3 fine-tune epochs")
_variant("distill-half", "fp32", _distill_half, "a student with half the blocks (or width), distilled 3 epochs")
_variant("qat-int8", "int8", _qat(8), "quantization-aware training, INT8 weights and activations (QDQ)")
_variant("qat-int4", "int4", _qat(4), "quantization-aware training, INT4 weights (DequantizeLinear, opset 21)")
