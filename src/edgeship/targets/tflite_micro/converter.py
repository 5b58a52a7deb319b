"""ONNX → full-INT8 .tflite (through the tflite target), then loaded in TFLite Micro to measure the arena."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import BadInput, GateFailed
from edgeship.core.registry import require
from edgeship.targets.tflite_micro.target import MAX_ARENA, TfliteMicroTargetConfig
from edgeship.targets.util import capture_c_output, check_output_path, inherited_facts, scratch_dir

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_PART = re.compile(r"Arena allocation (head|tail) (\d+) bytes")


def measure_arena(path: Path, arena_size: int = MAX_ARENA) -> dict[str, int]:
    """Load ``path`` in TFLite Micro and return the arena it allocated (total/head/tail bytes).

    The interpreter prints its allocations from C++ to the process's stdout, so we read the file
    descriptor, not sys.stdout."""
    runtime = require("tflite_micro.python.tflite_micro.runtime", "micro", "tflite-micro")
    log: list[str] = []
    try:
        with capture_c_output() as log:
            interp = runtime.Interpreter.from_file(str(path), arena_size=arena_size)
            interp.print_allocations()
    except (RuntimeError, ValueError) as exc:
        raise BadInput(f"TFLite Micro cannot load {path.name}: {str(exc).splitlines()[0][:300]}"
                       " (an op TFLite Micro lacks, or a float model: convert with precision int8)") from None
    text = "".join(log)
    total = _TOTAL.search(text)
    if not total:
        raise BadInput(f"TFLite Micro did not report the arena of {path.name}: {text.strip()[-200:]}")
    parts = {k: int(v) for k, v in _PART.findall(text)}
    return {"total": int(total.group(1)), **parts}


def _check_budget(arena: dict[str, int], cfg: TfliteMicroTargetConfig, out: Path) -> None:
    """Before anything is written: a model whose arena exceeds the device's RAM budget fails the gate."""
    if cfg.ram_bytes is not None and arena["total"] > cfg.ram_bytes:
        raise GateFailed(f"{out.name} needs a {arena['total']}-byte tensor arena, over the {cfg.ram_bytes}-byte "
                         "RAM budget; shrink the model or its input")


def convert(model: Model, out: Path, cfg: TfliteMicroTargetConfig, calib: Any = None) -> Model:
    check_output_path(out)
    if model.format == "tflite":
        with scratch_dir(out) as work:
            tmp = work / out.name
            shutil.copyfile(model.path, tmp)
            arena = measure_arena(tmp)
            _check_budget(arena, cfg, out)
            tmp.replace(out)
        base = model
        io = model.io
        facts: dict[str, Any] = {**inherited_facts(model), "precision": "int8",
                                 **{k: v for k, v in model.facts.items() if k in ("tflite", "input_layout")}}
    else:
        from edgeship.targets.tflite.converter import convert_onnx
        from edgeship.targets.tflite.target import TfliteTargetConfig

        tcfg = TfliteTargetConfig(precision="int8", int8_io=cfg.int8_io, per_channel=cfg.per_channel,
                                  calib_samples=cfg.calib_samples)
        with scratch_dir(out) as work:
            tfl = convert_onnx(model, work / out.name, tcfg, calib)
            arena = measure_arena(tfl.path)
            _check_budget(arena, cfg, out)
            tfl.path.replace(out)
        base, io = model, model.io
        facts = {**tfl.facts}
    facts.update({"arena_bytes": arena["total"], "arena": arena, "runtime": "tflite-micro"})
    return base.derive(out, "convert:tflite-micro", cfg.to_dict(), fmt="tflite", io=io, facts=facts).save()
