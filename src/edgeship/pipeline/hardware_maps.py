"""The hardware map in ``edgeship optimize``: every row's file mapped on the map targets of its
target (``tflite`` → ``tflite-gpu``, ``openvino`` → ``openvino-cpu``, ``executorch`` →
``xnnpack``, ...; the recipe's ``hardware_map`` adds targets for the ONNX Runtime rows, e.g.
``[edgetpu, qnn-htp]``), and the recipe's map gates (``max_partitions``, ``require_full_offload``,
``max_fallback_nodes``) fail the rows whose map does not pass them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.artifact import Model
from edgeship.core.errors import EdgeshipError
from edgeship.pipeline.recipe import OptimizeRecipe

MAPPABLE = ("onnx", "tflite")


def map_targets_of(target: str, recipe: OptimizeRecipe) -> list[str]:
    """The map targets a row on ``target`` is mapped on."""
    from edgeship.targets.hwmap.profiles import all_map_targets

    names = [t.name for t in all_map_targets() if t.deploy == target]
    if target == "onnxruntime":
        names += [n for n in recipe.hardware_map if n not in names]
    return names


def _mapped_file(row: dict[str, Any], run_dir: Path) -> Path | None:
    """The row's own file when the map reads its format, else the ONNX file it was converted from."""
    path = run_dir / row["path"] if row.get("path") else None
    if path is not None and path.exists() and Model.open(path).format in MAPPABLE:
        return path
    for onnx in (run_dir / f"{row['variant']}.onnx", run_dir / "fp32.onnx"):
        if onnx.exists():
            return onnx
    return None


def attach_maps(rows: list[dict[str, Any]], recipe: OptimizeRecipe, run_dir: Path) -> None:
    """Add ``row["hardware_map"]`` to every row that ran, and fail the rows whose map fails a gate."""
    from edgeship.targets.hwmap.run import map_model

    for row in rows:
        if row.get("status") in ("not_run", "error"):
            continue
        targets = map_targets_of(row["id"].split("@", 1)[1], recipe)
        path = _mapped_file(row, run_dir) if targets else None
        if path is None:
            continue
        maps: dict[str, Any] = {}
        for name in targets:
            try:
                hw = map_model(path, name)
            except EdgeshipError as exc:
                maps[name] = {"error": str(exc)}
                continue
            failed = hw.gate_failures(recipe.max_partitions, recipe.require_full_offload, recipe.max_fallback_nodes)
            maps[name] = {"file": str(path.relative_to(run_dir)), "summary": hw.summary(),
                          "splits": [{k: v for k, v in s.to_dict().items() if k != "nodes"} for s in hw.splits],
                          "problems": [p.to_dict() for p in hw.problems], "gates_failed": failed}
            if failed and row["gate"].get("passed"):
                row["gate"]["passed"] = False
                row["status"] = "fail"
                row["gate"]["why"] = "; ".join(failed)
        row["hardware_map"] = maps
