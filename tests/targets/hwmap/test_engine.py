"""The map engine on graphs built in code: placement by policy, partitions, hand-off bytes and
cost, the one-segment and largest-partition quirks, folding, and the suggestion of each split."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwmap_graphs import conv_chain

from edgeship.targets.hwmap.engine import build_map
from edgeship.targets.hwmap.graph import read_onnx
from edgeship.targets.hwmap.profiles import Link, MapTarget, Unit, map_target
from edgeship.targets.hwmap.rules import parse_rules

SOURCE = {"doc": {"title": "a test document", "url": "https://example.invalid/doc", "version": "test 1"}}


def rules(name: str, ops: list[str] | dict, **extra):
    data = {"name": name, "title": f"{name} unit", "version": 1, "vocabulary": "onnx", "sources": SOURCE,
            "ops": ops if isinstance(ops, dict) else {op: {} for op in ops}, **extra}
    return parse_rules(data, Path(f"{name}.yaml"))


def target(*units, **policy) -> MapTarget:
    return MapTarget("test", "a test target", tuple(Unit(n, r) for n, r in units), Link(100.0, 10.0, "assumed"),
                     **policy)


NPU = rules("npu", ["Conv", "Relu", "Identity"])
CPU = rules("cpu", [], unlisted="accept")


def test_policy_prefers_the_first_unit_and_counts_partitions_and_bytes():
    g = read_onnx(conv_chain(["Relu", "HardSwish", "Relu"]))
    hw = build_map(g, target(("NPU", NPU), ("CPU", CPU)))
    units = {n.name: n.unit for n in hw.placed}
    assert units["hardswish1"] == "CPU" and units["conv1"] == "NPU" and units["relu0"] == "NPU"
    assert [p.unit for p in hw.partitions] == ["NPU", "CPU", "NPU"]
    assert hw.transitions == 2 and len(hw.fallback_nodes) == 1
    # each hand-off carries one 1x4x8x8 float tensor: 1024 bytes, 100 us + 1024 B / 10 GB/s
    assert [b.nbytes for b in hw.boundaries] == [1024, 1024]
    assert hw.boundaries[0].cost_us == pytest.approx(100 + 1024 / 1e4)
    split = next(s for s in hw.splits if s.op == "HardSwish")
    assert split.unit == "CPU" and "replace it with ReLU6" in split.suggestion
    assert split.suggestion.endswith("or accept 3 partitions")
    assert hw.loads and not hw.full_offload


def test_single_segment_sends_everything_after_the_first_refusal_to_the_fallback():
    hw = build_map(read_onnx(conv_chain(["Relu", "HardSwish", "Relu"])),
                   target(("NPU", NPU), ("CPU", CPU), single_segment=True))
    assert [p.unit for p in hw.partitions] == ["NPU", "CPU"]
    late = next(n for n in hw.placed if n.name == "conv2")
    assert late.unit == "CPU" and "cannot partition the model more than once" in late.why


def test_max_partitions_keeps_only_the_largest_partition_on_the_unit():
    hw = build_map(read_onnx(conv_chain(["Relu", "HardSwish", "Relu", "Relu"])),
                   target(("NPU", NPU), ("CPU", CPU), max_partitions={"NPU": 1}))
    npu = [p for p in hw.partitions if p.unit == "NPU"]
    assert len(npu) == 1 and len(npu[0].nodes) == 5  # conv1 relu1... the larger tail stays
    dropped = next(n for n in hw.placed if n.name == "conv0")
    assert dropped.unit == "CPU" and "largest partition" in dropped.why


def test_a_node_no_unit_takes_keeps_the_model_from_loading():
    hw = build_map(read_onnx(conv_chain(["Relu", "HardSwish"])), target(("NPU", NPU)))
    assert not hw.loads and [n.name for n in hw.unplaced] == ["hardswish1"]
    assert hw.problems[0].kind == "op" and "HardSwish" in hw.problems[0].what


def test_static_shape_rules_refuse_dynamic_dims_and_suggest_a_static_variant():
    static = rules("npu", ["Conv", "Relu", "Identity"], limits={"static_shapes": True})
    hw = build_map(read_onnx(conv_chain(["Relu"], batch="N")), target(("NPU", static), ("CPU", CPU)))
    assert all(n.unit == "CPU" for n in hw.placed)
    split = hw.splits[0]
    assert split.reason.startswith("dynamic shape") and "--shape x:1,4,8,8" in split.suggestion
    pinned = build_map(read_onnx(conv_chain(["Relu"], batch="N"), shapes={"x": (1, 4, 8, 8)}),
                       target(("NPU", static), ("CPU", CPU)))
    assert pinned.full_offload


def test_rule_checks_name_the_limit_that_refused():
    checks = rules("npu", {"Conv": {"min_version": 22}, "Relu": {"dtypes": ["int8"]}, "Identity": {"max_rank": 2}})
    hw = build_map(read_onnx(conv_chain(["Relu"])), target(("NPU", checks), ("CPU", CPU)))
    why = {n.op: n.why for n in hw.placed}
    assert "version 11 is older than" in why["Conv"]
    assert "computes in fp32" in why["Relu"] and "int8" in why["Relu"]
    assert "rank-4" in why["Identity"]


def test_constants_and_static_shape_arithmetic_fold():
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Constant", [], ["one"], name="const",
                              value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
             helper.make_node("Concat", ["s", "one"], ["s2"], name="concat", axis=0),
             helper.make_node("Relu", ["x"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("s2", TensorProto.INT64, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    graph = read_onnx(model)
    assert {n.name for n in graph.nodes if n.folded} == {"shape", "const", "concat"}
    assert [n.name for n in build_map(graph, map_target("onnxruntime")).placed] == ["relu"]
    assert onnx.checker.check_model(model) is None


def test_the_edge_tpu_example_of_the_issue():
    """An int8 CNN with one HardSwish: the Edge TPU takes the convolutions, not HardSwish, and
    maps one segment only, so the rest of the graph follows it to the CPU."""
    hw = build_map(read_onnx(conv_chain(["Relu", "HardSwish", "Relu"], int8=True)), map_target("edgetpu"))
    by_name = {n.name: n for n in hw.nodes}
    assert by_name["conv0"].unit == "TPU" and by_name["conv0"].lowered == ("CONV_2D",)
    assert by_name["relu0"].status == "elided"  # fused into the conv by onnx2tf
    assert by_name["hardswish1"].unit == "CPU"
    assert by_name["conv2"].unit == "CPU" and "more than once" in by_name["conv2"].why
    split = next(s for s in hw.splits if s.op == "HardSwish")
    assert split.reason == "HARD_SWISH is not supported on the Edge TPU (not in the supported-operations table)"
    assert split.suggestion.startswith("replace it with ReLU6")
    assert [p.unit for p in hw.partitions] == ["TPU", "CPU"] and hw.loads


def test_tflite_gpu_keeps_only_the_largest_partition():
    hw = build_map(read_onnx(conv_chain(["Relu", "Relu", "Floor", "Relu"])), map_target("tflite-gpu"))
    gpu = [p for p in hw.partitions if p.unit == "GPU"]
    assert len(gpu) == 1  # the delegate's default max_delegated_partitions = 1
    assert any("largest partition" in n.why for n in hw.placed)


def test_a_tflite_model_is_refused_by_an_onnx_target():
    from edgeship.core.errors import BadInput
    from edgeship.targets.hwmap.graph import Graph

    with pytest.raises(BadInput, match="maps ONNX models"):
        build_map(Graph("m.tflite", "tflite", [], {}, (), ()), map_target("onnxruntime"))


def test_a_model_with_external_weights_maps_without_reading_them(tmp_path):
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    path = tmp_path / "ext.onnx"
    model = conv_chain(["Relu"])
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="ext.onnx.data",
                                   size_threshold=0)
    onnx.save(model, path)
    (tmp_path / "ext.onnx.data").unlink()  # the map must not need the weights file
    hw = build_map(read_onnx(path), map_target("onnxruntime"))
    assert hw.loads and len(hw.placed) == 3
