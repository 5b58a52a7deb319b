"""Typed configs of the quantization methods: one frozen dataclass per method, each with its ``kind``.

They round-trip to JSON/YAML (``Config.to_dict``/``from_dict``); the CLI builds the same objects, its
flags generated from these fields (each field's description is its flag's help). Literal-typed
fields are checked by ``Config`` itself.
Every config that touches nodes accepts ``nodes_to_exclude``: the ``mixed`` search works by
choosing that list for a base config, so a mixed result is reproducible from its base config alone.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from edgeship.core.config import Config, described
from edgeship.core.errors import BadInput

Optimize = Literal["auto", "none", "bert"]
CalibMethod = Literal["minmax", "entropy", "percentile"]
PadPolicy = Literal["pad", "bucket"]

# Fewer calibration samples than this give ranges that do not generalise (and a single sample
# cannot reveal a constant input); the figure is stated in every "too few samples" error.
MIN_CALIB_SAMPLES = 4


def _check_names(cls: str, field: str, names: tuple[str, ...]) -> None:
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise BadInput(f"{cls}.{field} must be a list of non-empty names, got {names!r}")


@dataclasses.dataclass(frozen=True)
class QuantConfig(Config):
    """Base of every quantization config (not registered itself)."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if f.name in ("nodes_to_exclude", "op_types", "op_types_include", "op_types_exclude",
                          "op_block_list", "node_block_list"):
                _check_names(type(self).__name__, f.name, getattr(self, f.name))

    @property
    def needs_calibration(self) -> bool:
        return False

    def excluding(self, nodes: tuple[str, ...] | list[str]) -> QuantConfig:
        """The same config with ``nodes`` added to its exclusions (used by the mixed search)."""
        current = tuple(getattr(self, "nodes_to_exclude", ()))
        return self.replace(nodes_to_exclude=current + tuple(n for n in nodes if n not in current))


@dataclasses.dataclass(frozen=True)
class Fp16Config(QuantConfig):
    """FP16 weights and compute; inputs/outputs stay FP32 (``keep_io_types``) so callers do not change."""

    kind = "fp16"
    keep_io_types: bool = described(True, "keep FP32 inputs and outputs")
    # Ops whose FP16 version overflows or loses too much (reductions, normalisations on large values).
    op_block_list: tuple[str, ...] = described((), "op types that stay FP32 (besides ONNX Runtime's own list)",
                                               metavar="A,B")
    node_block_list: tuple[str, ...] = described((), "node names that stay FP32", metavar="N1,N2")
    # alias of node_block_list, so the mixed search can drive it
    nodes_to_exclude: tuple[str, ...] = described((), "node names to keep in float (names from edgeship inspect or "
                                                  "a mixed result's nodes_kept_fp32)", metavar="N1,N2")


@dataclasses.dataclass(frozen=True)
class Int8DynamicConfig(QuantConfig):
    """INT8 weights, activations quantized at run time (per tensor, per call): no calibration needed.

    ``smooth_alpha`` (SmoothQuant-style) moves activation outlier channels into the weights with a
    per-channel scale computed on calibration data; it then needs ``--calib``.
    """

    kind = "int8-dynamic"
    per_channel: bool = described(True, "per-channel weight scales")
    reduce_range: bool = described(False, "quantize weights with 7 bits (can help accuracy on CPUs without VNNI)")
    op_types: tuple[str, ...] = described((), "op types to quantize (default: every type ORT quantizes dynamically: "
                                          "MatMul, Attention, Gather, ...)", metavar="A,B")
    nodes_to_exclude: tuple[str, ...] = described((), "node names to keep in float (names from edgeship inspect or "
                                                  "a mixed result's nodes_kept_fp32)", metavar="N1,N2")
    # the word-embedding table is often half the file
    quantize_embedding_gather: bool = described(True, "quantize the embedding table")
    smooth_alpha: float | None = described(None, "SmoothQuant-style smoothing strength in (0,1), e.g. 0.7 (needs "
                                           "--calib)", metavar="A")
    # smooth only activations whose largest channel exceeds this many times the median channel:
    # the others gain nothing and would each pay for a Mul at run time
    smooth_min_outlier_ratio: float = described(6.0, "smooth only activations whose largest channel is R× the "
                                                "median one (0 smooths all)", metavar="R")
    optimize: Optimize = described("auto", "fuse transformer blocks (attention, LayerNorm, GELU) before quantizing "
                                   "(auto: for dynamic INT8, when recognised)")

    def validate(self) -> None:
        super().validate()
        if self.smooth_alpha is not None and not 0.0 < self.smooth_alpha < 1.0:
            raise BadInput(f"Int8DynamicConfig.smooth_alpha={self.smooth_alpha}; use a value in (0, 1), e.g. 0.7")
        if self.smooth_min_outlier_ratio < 0:
            raise BadInput(f"Int8DynamicConfig.smooth_min_outlier_ratio={self.smooth_min_outlier_ratio}; use 0 or more "
                           "(0 smooths every activation)")

    @property
    def needs_calibration(self) -> bool:
        return self.smooth_alpha is not None


@dataclasses.dataclass(frozen=True)
class Int8StaticConfig(QuantConfig):
    """INT8 QDQ with activation ranges calibrated on data."""

    kind = "int8-static"
    calibration: CalibMethod = described("minmax", "how activation ranges are computed from the calibration data")
    percentile: float = described(99.999, "percentile method: the percentile of |x| kept, in [90, 100)", metavar="P")
    per_channel: bool = described(True, "per-channel weight scales")
    symmetric_activations: bool = described(False, "symmetric INT8 activations instead of asymmetric UINT8")
    op_types_include: tuple[str, ...] = described((), "op types to quantize (default: every type ORT quantizes "
                                                  "statically)", metavar="A,B")
    op_types_exclude: tuple[str, ...] = described((), "op types to leave in float", metavar="A,B")
    nodes_to_exclude: tuple[str, ...] = described((), "node names to keep in float (names from edgeship inspect or "
                                                  "a mixed result's nodes_kept_fp32)", metavar="N1,N2")
    calib_samples: int = described(128, "at most N samples are used to calibrate", metavar="N")
    # rounding weights to INT8 shifts each output channel's mean (depthwise convolutions most): measured
    # per layer against the float model and taken out of the INT32 bias
    bias_correction: bool = described(True, "correct the shift that weight rounding leaves in each Conv/Gemm "
                                      "output channel's mean, layer by layer on calibration samples")
    bias_correction_samples: int = described(64, "at most N calibration samples measure the bias shifts",
                                             metavar="N")
    pad_policy: PadPolicy = described("bucket", "calibration inputs of different lengths: padded to one, or "
                                      "calibrated length by length")
    chunk_size: int = described(16, "samples held in memory at once during calibration", metavar="N")
    optimize: Optimize = described("auto", "fuse transformer blocks (attention, LayerNorm, GELU) before quantizing "
                                   "(auto: for dynamic INT8, when recognised)")

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not 90.0 <= self.percentile < 100.0:
            raise BadInput(f"{name}.percentile={self.percentile}; use a value in [90, 100), e.g. 99.999")
        if self.calib_samples < MIN_CALIB_SAMPLES:
            raise BadInput(f"{name}.calib_samples={self.calib_samples}; use at least {MIN_CALIB_SAMPLES}")
        if self.chunk_size < 1:
            raise BadInput(f"{name}.chunk_size={self.chunk_size}; use at least 1")
        if self.bias_correction_samples < 1:
            raise BadInput(f"{name}.bias_correction_samples={self.bias_correction_samples}; use at least 1, e.g. 64")

    @property
    def needs_calibration(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class Int4WeightConfig(QuantConfig):
    """Weight-only block quantization (MatMulNBits); activations stay float (or int8 at accuracy_level 4)."""

    kind = "int4-weight"
    block_size: int = described(32, "weights per scale block (a power of two >= 16)", metavar="N")
    symmetric: bool = described(True, "symmetric block scales (no zero point)")
    accuracy_level: Literal[0, 1, 2, 3, 4] = described(4, "compute type: 4 = INT8 activations (fast on VNNI "
                                                       "CPUs), 3 bf16, 2 fp16, 1 FP32, 0 unset")
    # 8 gives near-lossless blockwise INT8 weights with the same kernel
    bits: Literal[4, 8] = described(4, "weight bits")
    quantize_gather: bool = described(True, "also quantize the embedding Gather (4-bit only)")
    nodes_to_exclude: tuple[str, ...] = described((), "node names to keep in float (names from edgeship inspect or "
                                                  "a mixed result's nodes_kept_fp32)", metavar="N1,N2")

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise BadInput(f"{name}.block_size={self.block_size}; use a power of two >= 16 (32, 64, 128)")


def default_candidates() -> tuple[QuantConfig, ...]:
    return (Int8DynamicConfig(), Int8DynamicConfig(smooth_alpha=0.7), Int8DynamicConfig(smooth_alpha=0.5),
            Int8StaticConfig(per_channel=True))


@dataclasses.dataclass(frozen=True)
class MixedConfig(QuantConfig):
    """Accuracy-aware mixed precision: quantize, find the nodes that break the gate, keep them FP32.

    Each candidate (a base config) is tried: first whole, then with its most sensitive nodes kept
    in FP32, one more at a time, until the gates pass on held-out selection data and the selection
    probes with ``margin`` to spare (a selection that passes exactly on the data it was chosen on
    fails on new data). The fastest passing candidate wins; with verification data it must pass
    that too.
    """

    kind = "mixed"
    gates: tuple[str, ...] = described(("cosine_mean>=0.995", "cosine_min>=0.98"),
                                       "accuracy gate, e.g. cosine_min>=0.98, accuracy_drop<=0.5", metavar="METRIC>=X")
    # Reserve this fraction of each gate's allowed error: cosine_min>=0.98 with 0.25 → search for 0.985.
    margin: float = described(0.25, "fraction of each gate's allowed error kept in reserve", metavar="F")
    candidates: tuple[QuantConfig, ...] = dataclasses.field(
        default_factory=default_candidates, metadata={"help": "the base configs tried (a config file sets them)"})
    time_budget_s: float = described(600.0, "seconds for the search", metavar="S")
    max_fp32_nodes: int = described(16, "at most N nodes kept in FP32", metavar="N")
    # the word-embedding table is half of a small encoder's file: keeping it FP32 costs the size
    max_size_ratio: float | None = described(None, "never keep nodes FP32 past this fraction of the FP32 file's "
                                             "size (e.g. 0.3)", metavar="F")
    holdout_fraction: float = described(0.3, "fraction of the calibration data kept aside to select on when no "
                                        "--eval data is given", metavar="F")
    calib_samples: int = described(96, "at most N samples are used to calibrate", metavar="N")
    sensitivity_samples: int = described(24, "samples used to rank nodes (short and long ones alike)", metavar="N")
    try_edge_remedy: bool = described(True, "before ranking nodes, try the hand remedy: embeddings and the first "
                                      "and last layers kept FP32")
    probes: bool = described(True, "select on the stress probes too (a set disjoint from the ones edgeship check "
                             "judges by), and verify on the check's probes")
    optimize: Optimize = described("auto", "fuse transformer blocks (attention, LayerNorm, GELU) before quantizing "
                                   "(auto: for dynamic INT8, when recognised)")

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not self.gates:
            raise BadInput(f"{name}.gates is empty; give at least one, e.g. cosine_min>=0.98")
        if not 0.0 <= self.margin < 1.0:
            raise BadInput(f"{name}.margin={self.margin}; use a fraction in [0, 1), e.g. 0.25")
        if not self.candidates:
            raise BadInput(f"{name}.candidates is empty; give at least one base method")
        for c in self.candidates:
            if not isinstance(c, QuantConfig) or isinstance(c, MixedConfig | Fp16Config):
                raise BadInput(f"{name}.candidates: {c!r} is not an int8/int4 quantization config")
        if self.time_budget_s <= 0:
            raise BadInput(f"{name}.time_budget_s={self.time_budget_s}; give a positive number of seconds")
        if self.max_size_ratio is not None and not 0.0 < self.max_size_ratio <= 1.0:
            raise BadInput(f"{name}.max_size_ratio={self.max_size_ratio}; use a fraction in (0, 1], e.g. 0.3")
        if self.max_fp32_nodes < 0:
            raise BadInput(f"{name}.max_fp32_nodes={self.max_fp32_nodes}; give 0 or more")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise BadInput(f"{name}.holdout_fraction={self.holdout_fraction}; use a fraction in (0, 1)")
        if self.calib_samples < MIN_CALIB_SAMPLES:
            raise BadInput(f"{name}.calib_samples={self.calib_samples}; use at least {MIN_CALIB_SAMPLES}")

    @property
    def needs_calibration(self) -> bool:
        return True
