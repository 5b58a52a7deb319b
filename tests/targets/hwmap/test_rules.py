"""The op-support rules are data: every file loads, every rule cites a document with its version,
bad files are refused, and the targets, lowering and suggestions tables hang together."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.errors import BadInput
from edgeship.targets.hwmap.lowering import builtins_made, lowering_table
from edgeship.targets.hwmap.profiles import all_map_targets, map_target, target_names
from edgeship.targets.hwmap.rules import load_rules, parse_rules, rule_names

# The map targets the issue names (edgeship map --list-targets lists them).
ISSUE_TARGETS = {"tflite-gpu", "nnapi", "qnn-htp", "edgetpu", "coreml-ane", "coreml-gpu", "tensorrt", "openvino-cpu",
                 "openvino-gpu", "openvino-npu", "xnnpack", "tflite-micro", "onnxruntime", "onnxruntime-cuda",
                 "onnxruntime-tensorrt", "onnxruntime-openvino", "onnxruntime-coreml", "onnxruntime-nnapi",
                 "onnxruntime-qnn", "onnxruntime-xnnpack"}


def test_every_issue_target_is_defined_with_its_units_in_policy_order():
    assert set(target_names()) >= ISSUE_TARGETS
    ane = map_target("coreml-ane")
    assert [u.name for u in ane.units] == ["ANE", "GPU", "CPU"]
    assert map_target("edgetpu").single_segment and map_target("tflite-gpu").max_partitions == {"GPU": 1}


@pytest.mark.parametrize("name", rule_names())
def test_every_rule_cites_a_document_and_its_version(name):
    rs = load_rules(name)
    assert rs.version >= 1 and rs.title and rs.vocabulary in ("onnx", "tflite")
    for source in rs.sources.values():
        assert source.url.startswith("https://") and source.version and source.title
    for rule in [*rs.ops.values(), *rs.unsupported.values()]:
        assert rule.cite in rs.sources, f"{name}: {rule.op} cites {rule.cite}"
    assert rs.ops or rs.accepts_unlisted


def test_every_unit_of_every_target_has_rules():
    used = {u.rules.name for t in all_map_targets() for u in t.units}
    assert used <= set(rule_names())
    assert set(rule_names()) <= used  # no rule file nobody uses


def _valid(**change):
    data = {"name": "x", "title": "X", "version": 1, "vocabulary": "onnx",
            "sources": {"doc": {"title": "t", "url": "https://example.invalid", "version": "1"}},
            "ops": {"Relu": {}}}
    data.update(change)
    return data


@pytest.mark.parametrize("change,message", [
    ({"ops": {"Relu": {"typo_key": 1}}}, "unknown key"),
    ({"ops": {"Relu": {"cite": "nowhere"}}}, "cites 'nowhere'"),
    ({"sources": {"doc": {"title": "t", "url": "https://example.invalid"}}}, "lacks version"),
    ({"sources": {}}, "cites no source"),
    ({"vocabulary": "caffe"}, "vocabulary"),
    ({"ops": {"Relu": {"dtypes": ["float32"]}}}, "unknown dtype"),
    ({"unsupported": {"Relu": {"why": "x"}}}, "both supported and unsupported"),
])
def test_bad_rule_files_are_refused_with_one_line(change, message):
    with pytest.raises(BadInput, match=message):
        parse_rules(_valid(**change), Path("x.yaml"))


def test_lowering_makes_only_real_builtins_that_the_cpu_fallback_judges():
    import ai_edge_litert.schema_py_generated as schema

    builtins = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    made = builtins_made()
    assert {op for op in made if not op.startswith("FLEX:")} <= builtins
    cpu = load_rules("tflite-cpu")
    assert all(op in cpu.unsupported for op in made if op.startswith("FLEX:"))  # select-TF ops say so
    assert lowering_table()["source"]["version"] == "onnx2tf 1.28.8"


def test_the_tflite_micro_rules_are_the_kernels_of_the_installed_build():
    pytest.importorskip("tflite_micro")
    from edgeship.targets.hwmap.crosscheck import micro_kernels

    kernels = micro_kernels()
    rules = load_rules("tflite-micro")
    assert set(rules.ops) <= kernels, sorted(set(rules.ops) - kernels)
    assert not set(rules.unsupported) & kernels  # what the rules refuse, the build has no kernel for


def test_the_onnxruntime_cpu_rules_are_the_installed_kernel_registry():
    """Each ai.onnx kernel of this onnxruntime has a rule whose versions cover it (the rules were
    generated from this registry; a new onnxruntime that adds or drops kernels fails here)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    rules = load_rules("onnxruntime-cpu")
    for k in ort_state.get_all_opkernel_def():
        if k.provider != "CPUExecutionProvider" or k.domain not in ("", "com.microsoft"):
            continue
        key = f"com.microsoft:{k.op_name}" if k.domain else k.op_name
        assert key in rules.ops, key
        assert rules.ops[key].get("min_version") <= k.version_range[0]


def test_every_explanation_the_cross_checks_name_is_written():
    """crosscheck.py names its explanations by runtime and key; each must be in explanations.yaml."""
    import re

    from edgeship.targets.hwmap import crosscheck

    code = Path(crosscheck.__file__).read_text()
    named = set(re.findall(r"""explain\(\s*["']([\w-]+)["'],\s*["'](\w+)["']""", code))
    assert len(named) >= 9, named
    for runtime, key in named:
        assert len(crosscheck.explain(runtime, key)) > 20, (runtime, key)
    with pytest.raises(KeyError):
        crosscheck.explain("tflite", "no-such-key")
