"""optimize's hardware maps: each row mapped on its target's map targets (and the recipe's extra
ones), map gates failing the rows whose map does not pass, and the report's section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# appended, not prepended: tests/ship import their own conftest by name
sys.path.append(str(Path(__file__).parents[1] / "targets" / "hwmap"))
from hwmap_graphs import conv_chain

from edgeship.core.errors import BadInput
from edgeship.pipeline.hardware_maps import attach_maps, map_targets_of
from edgeship.pipeline.recipe import OptimizeRecipe
from edgeship.report.writers import hardware_map_lines, to_html, to_markdown


def _run(tmp_path: Path) -> list[dict]:
    import onnx

    onnx.save(conv_chain(["Relu", "HardSwish", "Relu"]), tmp_path / "fp32.onnx")
    return [{"id": "fp32@onnxruntime", "variant": "fp32", "target": "onnxruntime-cpu", "path": "fp32.onnx",
             "status": "pass", "gate": {"passed": True, "why": ""}, "metrics": {}, "precision": "fp32"},
            {"id": "fp32@openvino", "variant": "fp32", "target": "openvino-cpu", "path": "fp32.xml",
             "status": "pass", "gate": {"passed": True, "why": ""}, "metrics": {}, "precision": "fp32"}]


def test_each_row_is_mapped_on_its_targets_and_the_recipes(tmp_path):
    rows = _run(tmp_path)
    recipe = OptimizeRecipe(model="m.onnx", hardware_map=("nnapi",))
    assert map_targets_of("onnxruntime", recipe) == ["onnxruntime", "nnapi"]
    assert map_targets_of("openvino", recipe) == ["openvino-cpu"]
    attach_maps(rows, recipe, tmp_path)
    nnapi = rows[0]["hardware_map"]["nnapi"]
    assert nnapi["summary"]["partitions"] == 3 and nnapi["splits"][0]["op"] == "HardSwish"
    # the OpenVINO row's .xml is not a format the map reads: its ONNX source is mapped
    assert rows[1]["hardware_map"]["openvino-cpu"]["file"] == "fp32.onnx"
    assert all(r["gate"]["passed"] for r in rows)  # no map gate in this recipe


def test_map_gates_fail_the_rows_whose_map_fails_them(tmp_path):
    rows = _run(tmp_path)
    attach_maps(rows, OptimizeRecipe(model="m.onnx", hardware_map=("nnapi",), max_partitions=1), tmp_path)
    assert rows[0]["status"] == "fail" and "more than --max-partitions 1" in rows[0]["gate"]["why"]
    assert rows[1]["status"] == "pass"  # one partition on OpenVINO CPU
    report = {"model": "m", "variants": rows, "data": {"eval": "x", "samples": 1, "rows": 1}, "gates": []}
    lines = hardware_map_lines(report)
    assert any(line.startswith("fp32@onnxruntime on nnapi: 3 partition(s), 1 fallback node(s), 1× HardSwish → CPU")
               for line in lines)
    assert "## Hardware map" in to_markdown(report) and "<h2>Hardware map</h2>" in to_html(report)


def test_recipe_refuses_unknown_map_targets_and_negative_gates():
    with pytest.raises(BadInput, match="no hardware-map target 'edge-tpu'"):
        OptimizeRecipe(model="m.onnx", hardware_map=("edge-tpu",))
    with pytest.raises(BadInput, match="max_partitions -1 must be 0 or more"):
        OptimizeRecipe(model="m.onnx", max_partitions=-1)


def test_optimize_flags_build_the_recipe_fields():
    from edgeship.cli.main import build_parser
    from edgeship.cli.optimize_cmd import build_recipe

    args = build_parser().parse_args(["optimize", "--model", "m.onnx", "--map", "edgetpu,qnn-htp",
                                      "--max-partitions", "2", "--require-full-offload", "--max-fallback-nodes", "3"])
    r = build_recipe(args)
    assert r.hardware_map == ("edgetpu", "qnn-htp") and r.max_partitions == 2 and r.require_full_offload
    assert r.max_fallback_nodes == 3
