"""Before any work: the cells of the optimize matrix that cannot be built or cannot pay, with why.

Each rule is registered for the variants (and targets) it judges and looks at facts of the plan — the
exported FP32 graph, the calibration data, the CPU — to say in one line why a (variant, target) cell
is skipped ("" when it is not). ``optimize`` asks before it builds anything, so a run never spends
minutes building, checking and timing a model that was bound to be refused or slower:

- **calibration**: a variant that builds from calibration data (int8-static, mixed, pruning,
  distillation, QAT) or a conversion that calibrates (a target's INT8) has none to use — the flag
  to add is named;
- **int8-dynamic on a convolutional graph** (ONNX Runtime): dynamic quantization turns Conv into
  ConvInteger, which ONNX Runtime runs several times slower than FP32 (0.08× on a MobileNetV2 here;
  int8-static quantizes convolutions into QLinearConv-class kernels instead);
- **weight-only INT4/INT8 without MatMul/Gather weights** (ONNX Runtime): MatMulNBits packs the
  weights of MatMul and Gather; a graph whose weights all feed Conv or Gemm has nothing to pack
  (OpenVINO's weight compression packs Conv weights too: its cell stays);
- **fp16 on a CPU without fp16 arithmetic** (ONNX Runtime, OpenVINO): fp16 tensors are widened to
  fp32 for every op, so the model is slower than FP32, however much smaller;
- **a conversion the target's converter says it cannot make** (``Target.why_cannot_convert``: TFLite
  INT8 through onnx2tf of a model with integer inputs, which it calibrates as float).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from edgeship.core.artifact import Model

CALIB_FLAG = "--calib DATA (data:NAME:calib, an .npz, or a folder of .npy/.npz files)"
CONV_OPS = ("Conv", "ConvTranspose")
MATMUL_OPS = ("MatMul", "Gemm", "Attention")


@dataclasses.dataclass(frozen=True)
class PlanFacts:
    """What the rules look at: the exported model and the run's calibration data."""

    fp32: Model
    calib: str | None

    @functools.cached_property
    def proto(self) -> Any:
        from edgeship.core import onnx_file

        return onnx_file.load(self.fp32.path, load_weights=True, check=False)

    @functools.cached_property
    def weight_bytes(self) -> dict[str, int]:
        """FP32 weight bytes by the op type that holds them (Conv, MatMul, Gather, ...)."""
        from edgeship.compress.quantize.graph import node_weight_bytes, weighted_nodes

        out: dict[str, int] = {}
        for node in weighted_nodes(self.proto):
            out[node.op_type] = out.get(node.op_type, 0) + node_weight_bytes(self.proto, node)
        return out


Rule = Callable[[str, str, tuple[str, str], PlanFacts], str]


@dataclasses.dataclass(frozen=True)
class PlanRule:
    fn: Rule
    variants: tuple[str, ...] | None  # None: every variant
    targets: tuple[str, ...] | None  # None: every target


RULES: list[PlanRule] = []


def plan_rule(variants: tuple[str, ...] | None = None,
              targets: tuple[str, ...] | None = None) -> Callable[[Rule], Rule]:
    """Register a rule ``(variant, target, (input, target precision), facts) -> why`` for cells."""

    def deco(fn: Rule) -> Rule:
        RULES.append(PlanRule(fn, variants, targets))
        return fn

    return deco


def why_skipped(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    """The first rule's reason this cell is skipped, "" when none applies."""
    for rule in RULES:
        if (rule.variants is None or vname in rule.variants) and (rule.targets is None or tname in rule.targets):
            why = rule.fn(vname, tname, how, facts)
            if why:
                return why
    return ""


@plan_rule()
def needs_calibration(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    from edgeship.pipeline.variants import get_variant

    if facts.calib:
        return ""
    builds_it = how[0] == "variant" and get_variant(vname).calibrates
    if builds_it:
        return f"{vname} builds from calibration data and the run has none; add {CALIB_FLAG}"
    if how[1] == "int8" and how[0] != "variant":
        return f"{tname} INT8 calibrates on data and the run has none; add {CALIB_FLAG}"
    return ""


@plan_rule()
def converter_cannot(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    """What the target's converter says it cannot make (tflite int8 of a model with integer inputs)."""
    from edgeship.targets.base import get_target

    if tname == "onnxruntime" or how[0] == "torch":
        return ""
    return get_target(tname).why_cannot_convert(facts.fp32, how[1])


@plan_rule(variants=("int8-dynamic",), targets=("onnxruntime",))
def dynamic_int8_on_convolutions(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    weights = facts.weight_bytes
    conv = sum(weights.get(op, 0) for op in CONV_OPS)
    dense = sum(weights.get(op, 0) for op in MATMUL_OPS)
    if conv == 0 or conv < dense:
        return ""
    share = conv / max(1, conv + dense)
    return (f"int8-dynamic would run this graph's convolutions ({share:.0%} of its Conv/MatMul weights) as "
            "ConvInteger, which ONNX Runtime runs slower than FP32 (0.08x measured on a MobileNetV2); "
            "int8-static quantizes convolutions")


@plan_rule(variants=("int4-weight", "int8-weight"), targets=("onnxruntime",))  # OpenVINO's packs Conv weights too
def int4_without_matmul(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    weights = facts.weight_bytes
    if weights.get("MatMul", 0) or weights.get("Gather", 0):
        return ""
    held = ", ".join(sorted(op for op, b in weights.items() if b)) or "no op"
    return (f"{vname} packs MatMul and Gather weights (MatMulNBits); this graph's weights feed {held}, "
            "so nothing would change; int8-static quantizes them")


@plan_rule(variants=("fp16",), targets=("onnxruntime", "openvino"))
def fp16_without_fp16_arithmetic(vname: str, tname: str, how: tuple[str, str], facts: PlanFacts) -> str:
    from edgeship.core.cpu import fp16_arithmetic

    native, why = fp16_arithmetic()
    if native is not False:
        return ""
    return f"fp16 cannot be faster than FP32 on this CPU on {tname}: {why}, so every op widens fp16 to fp32"


def implied_calibration(eval_spec: str | None) -> str | None:
    """The calibration data the evaluation data implies: the ``calib`` split of the same registered
    data set (``data:images`` or ``data:images:test`` → ``data:images:calib``), or its ``-calib``
    sibling (``data:digits-test`` → ``data:digits-calib``); None for files and sets without one."""
    from edgeship.core.data import DATA, sibling_split

    if not eval_spec or not eval_spec.startswith("data:"):
        return None
    implied = sibling_split(eval_spec, "calib")
    if implied:
        return implied
    name = eval_spec[5:].partition(":")[0]
    for suffix in ("-test", "-eval", "-val"):
        if name.endswith(suffix) and f"{name.removesuffix(suffix)}-calib" in DATA.names():
            return f"data:{name.removesuffix(suffix)}-calib"
    return None
