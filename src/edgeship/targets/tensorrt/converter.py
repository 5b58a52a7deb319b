"""ONNX → serialized TensorRT engine through the tensorrt Python API (needs TensorRT and an NVIDIA GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.atomic import atomic_path, check_output_path, write_bytes
from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.targets.tensorrt.plan import CalibrationBatches, builder_flags, profile_shapes
from edgeship.targets.tensorrt.target import TensorrtTargetConfig
from edgeship.targets.util import calib_rows, inherited_facts


def make_calibrator(trt: Any, batches: CalibrationBatches, cache_path: Path) -> Any:
    """An IInt8EntropyCalibrator2 that feeds our batches from CUDA memory (torch CUDA tensors)."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.batches = iter(batches)
            self.device: dict[str, Any] = {}

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                batch = next(self.batches)
            except StopIteration:
                return None
            self.device = {n: torch.from_numpy(batch[n]).cuda() for n in names}
            return [int(self.device[n].data_ptr()) for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: bytes) -> None:
            write_bytes(cache_path, bytes(cache))

    return EntropyCalibrator()


def convert(model: Model, out: Path, cfg: TensorrtTargetConfig, calib: Any = None) -> Model:
    trt = require("tensorrt", "tensorrt", "TensorRT")
    check_output_path(out)
    rows = calib_rows(calib, model.io, cfg.calib_samples)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model.path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BadInput(f"TensorRT cannot parse {model.path.name}: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mb << 20)
    for flag in builder_flags(cfg):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    shapes = profile_shapes(model.io, cfg, rows)
    profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in shapes.items():
        profile.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(profile)
    cache = None
    if cfg.timing_cache:
        blob = Path(cfg.timing_cache).read_bytes() if Path(cfg.timing_cache).is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    facts: dict[str, Any] = {**inherited_facts(model), "precision": cfg.precision, "flags": builder_flags(cfg),
                             "profile": {k: [list(s) for s in v] for k, v in shapes.items()}}
    if cfg.precision == "int8":
        batches = CalibrationBatches(rows, model.io.input_names, cfg.calib_batch)
        config.int8_calibrator = make_calibrator(trt, batches, out.with_name(out.name + ".calib"))
        config.set_calibration_profile(profile)
        facts["calibration"] = {"batches": len(batches), "batch_size": batches.batch_size, "skipped": batches.skipped}
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BadInput(f"TensorRT could not build an engine for {model.path.name}; see its log above")
    if cache is not None and cfg.timing_cache:
        write_bytes(cfg.timing_cache, bytes(cache.serialize()))
    with atomic_path(out) as tmp:
        tmp.write_bytes(bytes(serialized))
    return model.derive(out, "convert:tensorrt", cfg.to_dict(), fmt="engine", io=model.io, facts=facts).save()
