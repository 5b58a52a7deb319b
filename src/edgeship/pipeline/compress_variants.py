"""The compression variants ``edgeship optimize`` builds from the PyTorch source: prune, distill, QAT.

Each runs the compression step of its config's type on the recipe's calibration data (which for the
bundled models carries labels where the task has them) and writes ``ctx.out`` as ONNX; the pipeline
then checks and benchmarks it like every other variant. They need a PyTorch source: an ONNX-only
recipe gets a one-line error naming the fix. The recipe's ``variant_options`` change their configs
(``{"prune-50": {"train": {"epochs": 1}}}``).

Registered names (pass them in a recipe's ``variants``):
- ``prune-30`` / ``prune-50``: structured pruning (channels, heads, MLP neurons) + 3 fine-tune epochs;
- ``distill-half``: a student with half the teacher's blocks (``layers=N/2``), or half its width
  when it has no block stack, trained 3 epochs;
- ``qat-int8`` / ``qat-int4``: quantization-aware fine-tuning, 3 epochs.
"""

from __future__ import annotations

from collections.abc import Callable

from edgeship.compress.distill.config import DistillConfig
from edgeship.compress.prune.config import PruneConfig
from edgeship.compress.qat.config import QatConfig
from edgeship.compress.train_settings import DistillTraining, PruneTraining, QatTraining, TrainedConfig
from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput
from edgeship.pipeline.variants import VariantContext, register_builder, register_variant
from edgeship.sources.torch_source import TorchSource


def _needs_source(ctx: VariantContext, name: str) -> TorchSource:
    if ctx.source is None:
        raise BadInput(f"variant {name!r} compresses the PyTorch model; give the recipe a PyTorch source "
                       "(zoo:NAME, file.py:factory, .pt2) instead of an ONNX file")
    return ctx.source


@register_builder(TrainedConfig)
def build_compressed(ctx: VariantContext, config: TrainedConfig) -> Model:
    """Run the step of ``config``'s type (PruneConfig, DistillConfig or QatConfig) for the pipeline."""
    from edgeship.compress.steps import compress

    source = _needs_source(ctx, config.kind)
    result = compress(source, config, data=ctx.calib(), out=ctx.out, eval_data=None, quiet=True)
    return result.model


def _prune(ratio: float) -> Callable[[VariantContext], PruneConfig]:
    def make(ctx: VariantContext) -> PruneConfig:
        lr = 1e-3 if ctx.task == "classification" else 1e-4
        return PruneConfig(ratio=ratio, train=PruneTraining(epochs=3, lr=lr))

    return make


def _distill_half(ctx: VariantContext) -> DistillConfig:
    from edgeship.compress.distill.students import repeated_blocks

    source = _needs_source(ctx, "distill-half")
    try:
        _, blocks = repeated_blocks(source.module)
        student = f"layers={max(1, len(blocks) // 2)}"
    except BadInput:
        student = "width=0.5"
    # DistillTraining's own rate and schedule (chosen by measurement on MiniLM and the digits CNN)
    return DistillConfig(student=student, train=DistillTraining(epochs=3))


def _qat(bits: int) -> QatConfig:
    return QatConfig(bits=bits, compare_ptq=False,  # type: ignore[arg-type]
                     train=QatTraining(epochs=3, lr=3e-4 if bits == 4 else 1e-4))


for _percent in (30, 50):
    register_variant(f"prune-{_percent}", "fp32", _prune(_percent / 100),
                     f"structured pruning, {_percent}% of channels/heads/neurons, 3 fine-tune epochs", trains=True)
register_variant("distill-half", "fp32", _distill_half, "a student with half the blocks (or width), distilled 3 epochs",
                 trains=True)
register_variant("qat-int8", "int8", _qat(8), "quantization-aware training, INT8 weights and activations (QDQ)",
                 trains=True)
register_variant("qat-int4", "int4", _qat(4), "quantization-aware training, INT4 weights (DequantizeLinear, opset 21)",
                 trains=True)
