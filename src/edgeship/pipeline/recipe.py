"""The optimize recipe: what to build, where to run it and how to judge it; the CLI writes one from
its flags, a YAML file gives one directly, and the run directory keeps a copy (reproducible, diffable).

```yaml
model: zoo:minilm          # zoo:NAME, file.py:factory, model.pt2, a Hugging Face folder, or model.onnx
data: data:sentences:test  # held-out evaluation data (default: the model's own)
calib: data:sentences:calib
variants: [fp32, fp16, int8-dynamic, int8-static, int4-weight, mixed]   # the default
targets: [onnxruntime]
gates: ["cosine_mean>=0.995", "cosine_min>=0.98"]   # for lossy variants (default: the model's)
hardware_map: [edgetpu, qnn-htp]   # map the ONNX rows on these too (each target's own map is always made)
max_partitions: 2                  # map gates: a row whose map has more partitions fails
batch: 1
seq: 32
out: runs/minilm
```
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from edgeship.core.config import Config
from edgeship.core.errors import BadInput

# What optimize tries when a recipe names no variants: every ONNX-level precision; compression steps
# (prune-*, distill-*, qat-*) are opt-in because they train.
DEFAULT_VARIANTS = ("fp32", "fp16", "int8-dynamic", "int8-static", "int4-weight", "mixed")


@dataclasses.dataclass(frozen=True)
class OptimizeRecipe(Config):
    kind: ClassVar[str] = "optimize"

    model: str = ""
    data: str | None = None
    calib: str | None = None
    out: str | None = None
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    targets: tuple[str, ...] = ("onnxruntime",)
    gates: tuple[str, ...] = ()
    batch: int = 1
    seq: int | None = None
    threads: int | None = None
    limit: int | None = None
    bench_min_time_s: float = 2.0
    baseline: bool = True  # benchmark PyTorch eager FP32 beside the variants
    export: dict[str, Any] = dataclasses.field(default_factory=dict)  # ExportConfig fields
    # per-variant config overrides, e.g. {"mixed": {"time_budget_s": 60}, "int8-static": {"per_channel": true}}
    variant_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    trust_pickle: bool = False
    task: str | None = None  # a Hugging Face folder's Optimum task (default: what its config.json says)
    # fixed sizes for symbolic input dims (-1, named): {"input": [1, 3, 224, 224]}, for synthetic data
    shapes: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    # hardware map (edgeship map): extra map targets for the ONNX Runtime rows, and gates on each row's map
    hardware_map: tuple[str, ...] = ()
    max_partitions: int | None = None
    require_full_offload: bool = False
    max_fallback_nodes: int | None = None

    def validate(self) -> None:
        if not self.model:
            raise BadInput("recipe: 'model' is required (zoo:NAME, file.py:factory, .pt2, HF folder, .onnx)")
        if self.batch < 1:
            raise BadInput(f"recipe: batch {self.batch} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise BadInput(f"recipe: limit {self.limit} must be at least 1")
        if not self.variants:
            raise BadInput("recipe: give at least one variant (e.g. fp32)")
        if not self.targets:
            raise BadInput("recipe: give at least one target (e.g. onnxruntime)")
        from edgeship.check.gates import parse_gates

        parse_gates(self.gates)
        for field in ("max_partitions", "max_fallback_nodes"):
            if getattr(self, field) is not None and getattr(self, field) < 0:
                raise BadInput(f"recipe: {field} {getattr(self, field)} must be 0 or more")
        if self.hardware_map:
            from edgeship.targets.hwmap.profiles import map_target

            for name in self.hardware_map:
                map_target(name)  # an unknown name lists the known ones

    def run_name(self) -> str:
        base = self.model.removeprefix("zoo:").rstrip("/").split("/")[-1]
        for suffix in (".onnx", ".pt2", ".py"):
            base = base.removesuffix(suffix)
        return base.split(":")[0] or "model"
