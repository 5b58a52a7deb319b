"""What the map predicts the converters make of an ONNX graph: the TFLite builtins of onnx2tf and
the TFLite converter (layout transposes, reshapes that vanish into a fully-connected layer, the
elementary-op Erf, ...) and the ExecuTorch XNNPACK partitioner's view rule. Each case is the
shape measured on a real conversion of a zoo model (test_crosscheck.py runs those)."""

from __future__ import annotations

import numpy as np
import pytest
from hwmap_graphs import graph_of, write
from onnx import helper

from edgeship.targets.hwmap.crosscheck import _compare_delegation
from edgeship.targets.hwmap.engine import build_map
from edgeship.targets.hwmap.graph import read_onnx
from edgeship.targets.hwmap.lowering import lower
from edgeship.targets.hwmap.profiles import map_target
from edgeship.targets.hwmap.rules import FIXED, INFERRED, SYMBOLIC, view_target

RNG = np.random.default_rng(0)
PSEUDO_ERF = ("ABS", "MUL", "ADD", "DIV", "MUL", "ADD", "MUL", "ADD", "MUL", "ADD", "MUL", "ADD", "MUL", "NEG", "MUL",
              "EXP", "MUL", "SUB", "ADD", "DIV", "MUL")


def lowered(model, shapes=None) -> dict[str, tuple[str, ...] | None]:
    g = read_onnx(model, shapes)
    return {n.name: lower(n, g) for n in g.nodes if not n.folded}


def conv_then(tail: list, size: int, pool: bool = False, consts: dict | None = None):
    """x [1, 1, size, size] -> Conv (16 channels) [-> GlobalAveragePool] -> c, then ``tail``."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c0"], name="conv", pads=[1, 1, 1, 1])]
    if pool:
        nodes.append(helper.make_node("GlobalAveragePool", ["c0"], ["c"], name="pool"))
    else:
        nodes.append(helper.make_node("Identity", ["c0"], ["c"], name="same"))
    return graph_of(nodes + tail, {"x": (1, 1, size, size)}, ["y"],
                    {"w": RNG.standard_normal((16, 1, 3, 3)).astype(np.float32), "flat": np.array([1, -1]),
                     **(consts or {})})


def test_a_cnn_flatten_transposes_back_to_nchw_first():
    """onnx2tf keeps conv tensors NHWC; flattening one moves data, so a TRANSPOSE comes first, and
    the RESHAPE stays because the fully-connected layer after it gets a different last dim."""
    fc = helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc", transB=1)
    model = conv_then([helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"), fc], 4,
                      consts={"fc_w": RNG.standard_normal((10, 256)).astype(np.float32)})
    assert lowered(model)["flatten"] == ("TRANSPOSE", "RESHAPE")


def test_a_pooled_flatten_vanishes_into_the_fully_connected_layer():
    """[1, C, 1, 1]: the NHWC -> NCHW transpose moves nothing (a reshape), and the fully-connected
    layer flattens [1, 1, 1, C] itself: nothing is left (EfficientNet's head, measured)."""
    fc = helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc", transB=1)
    model = conv_then([helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"), fc], 4, pool=True,
                      consts={"fc_w": RNG.standard_normal((10, 16)).astype(np.float32)})
    assert lowered(model)["flatten"] == ()
    relu = conv_then([helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"),
                      helper.make_node("Relu", ["f"], ["y"], name="relu")], 4, pool=True)
    assert lowered(relu)["flatten"] == ("RESHAPE",)  # no fully-connected layer to absorb it


def test_a_dynamic_batch_keeps_what_static_shapes_would_drop():
    """With the batch dynamic (the converter keeps an export's dynamic batch) the TFLite converter can
    prove neither a trivial transpose nor an identity reshape: both stay (measured on the
    dynamic-batch digits CNN and EfficientNet-Lite0)."""
    fc = helper.make_node("Gemm", ["f", "fc_w"], ["h"], name="fc", transB=1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c0"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c0"], ["c"], name="pool"),
             helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"), fc,
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "fc2_w"], ["y"], name="fc2", transB=1)]
    consts = {"w": RNG.standard_normal((16, 1, 3, 3)).astype(np.float32), "flat": np.array([-1, 16]),
              "fc_w": RNG.standard_normal((8, 16)).astype(np.float32),
              "fc2_w": RNG.standard_normal((4, 8)).astype(np.float32)}
    model = graph_of(nodes, {"x": ("batch", 1, 4, 4)}, ["y"], consts)
    got = lowered(model)
    assert got["flatten"] == ("TRANSPOSE", "RESHAPE") and got["fc"] == ("FULLY_CONNECTED",)
    assert got["fc2"] == ("RESHAPE", "FULLY_CONNECTED")
    static = lowered(model, shapes={"x": (1, 1, 4, 4)})
    assert static["flatten"] == () and static["fc2"] == ("FULLY_CONNECTED",)


def test_tensors_of_rank_2_inputs_are_not_channels_last():
    """A transformer's [1, S, H] activations come from rank-2 token ids: a plain RESHAPE."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             helper.make_node("Reshape", ["e", "heads"], ["y"], name="split_heads")]
    model = graph_of(nodes, {"ids": (1, 8)}, ["y"], {"table": RNG.standard_normal((50, 16)).astype(np.float32),
                                                     "heads": np.array([1, -1, 4, 4])}, int_inputs=("ids",))
    got = lowered(model)
    assert got["split_heads"] == ("RESHAPE",)
    assert got["embed"] == ("LESS", "CAST", "MUL", "ADD", "GATHER")  # negative indices wrapped first


def test_division_by_a_constant_is_a_multiplication_and_one_bound_clips_are_one_op():
    nodes = [helper.make_node("Div", ["x", "c"], ["a"], name="by_const"),
             helper.make_node("Div", ["a", "x"], ["b"], name="by_tensor"),
             helper.make_node("Clip", ["b", "lo"], ["y"], name="clamp_min")]
    got = lowered(graph_of(nodes, {"x": (1, 4)}, ["y"], {"c": 8.0, "lo": 1e-9}))
    assert got == {"by_const": ("MUL",), "by_tensor": ("DIV",), "clamp_min": ("MAXIMUM",)}


def test_dividing_by_the_own_l2_norm_is_one_l2_normalization():
    nodes = [helper.make_node("ReduceL2", ["x", "axes"], ["n"], name="norm", keepdims=1),
             helper.make_node("Div", ["x", "n"], ["y"], name="normalise")]
    assert lowered(graph_of(nodes, {"x": (1, 16)}, ["y"], {"axes": np.array([1])})) == {
        "norm": ("L2_NORMALIZATION",), "normalise": ()}
    clamped = [nodes[0], helper.make_node("Clip", ["n", "eps"], ["c"], name="clamp"),
               helper.make_node("Div", ["x", "c"], ["y"], name="normalise")]  # F.normalize, as MiniLM ends
    got = lowered(graph_of(clamped, {"x": (1, 16)}, ["y"], {"axes": np.array([1]), "eps": 1e-12}))
    assert got == {"norm": ("SQUARE", "SUM", "SQRT"), "clamp": ("MAXIMUM",), "normalise": ("DIV",)}


def gelu(onnx2tf_order: bool):
    """x * 0.5 * (1 + erf(x / sqrt 2)) in the order onnx2tf matches, or in torch's dynamo order."""
    tail = ([helper.make_node("Mul", ["x", "e1"], ["m"], name="mul_x"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="mul_half")] if onnx2tf_order else
            [helper.make_node("Mul", ["half", "e1"], ["m"], name="mul_half"),
             helper.make_node("Mul", ["x", "m"], ["y"], name="mul_x")])
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"], name="div"),
             helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["e1"], name="add"), *tail]
    return graph_of(nodes, {"x": (1, 8)}, ["y"], {"sqrt2": float(np.float32(2 ** 0.5)), "one": 1.0, "half": 0.5})


def test_onnx2tf_makes_one_gelu_of_its_pattern_only():
    assert lowered(gelu(True)) == {"div": ("GELU",), "erf": (), "add": (), "mul_x": (), "mul_half": ()}
    dynamo = lowered(gelu(False))  # what torch.onnx exports from F.gelu (measured on MiniLM)
    assert dynamo["div"] == ("MUL",) and dynamo["erf"] == PSEUDO_ERF
    assert dynamo["add"] == ("ADD",) and dynamo["mul_half"] == dynamo["mul_x"] == ("MUL",)


@pytest.mark.parametrize(("after", "expected"), [
    ("Erf", ("FULLY_CONNECTED", "RESHAPE")),  # the RESHAPE back to rank 3 stays before a unary op
    ("Reshape", ("FULLY_CONNECTED",)),  # merged into the Reshape after it
    ("Add", ("FULLY_CONNECTED",)),  # folded into the broadcasting residual add
])
def test_a_rank_3_linear_layer_keeps_its_reshape_only_where_nothing_absorbs_it(after, expected):
    consumer = {"Erf": helper.make_node("Erf", ["h"], ["y"], name="next"),
                "Reshape": helper.make_node("Reshape", ["h", "heads"], ["y"], name="next"),
                "Add": helper.make_node("Add", ["h", "x"], ["y"], name="next")}[after]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"], name="linear"),
             helper.make_node("Add", ["mm", "bias"], ["h"], name="bias"), consumer]
    consts = {"w": RNG.standard_normal((16, 16)).astype(np.float32), "bias": np.zeros(16, np.float32),
              "heads": np.array([1, 8, 4, 4])}
    model = graph_of(nodes, {"x": (1, 8, 16)}, ["y"], consts)
    got = lowered(model)
    assert got["linear"] == expected and got["bias"] == ()  # the bias is fused into the FULLY_CONNECTED


def test_layer_norm_is_tf_keras_layer_normalization():
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], name="ln", axis=-1)]
    model = graph_of(nodes, {"x": (1, 8)}, ["y"], {"g": np.ones(8, np.float32), "b": np.zeros(8, np.float32)})
    assert lowered(model)["ln"] == ("MEAN", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "MUL", "SUB",
                                    "ADD")


# -- ExecuTorch: the XNNPACK partitioner's view rule ------------------------------------------------
def attention(tmp_path):
    """q [B, S, 16] -> Reshape to [B, S, 4, 4] (batch from Shape, -1 for the sequence) -> Transpose ->
    a batched MatMul of two computed rank-4 tensors -> Transpose -> Reshape back to [B, S, 16]
    (batch and sequence from Shape), as torch exports attention."""
    nodes = [helper.make_node("Shape", ["q"], ["qs"], name="shape"),
             helper.make_node("Slice", ["qs", "zero", "one"], ["b"], name="batch"),
             helper.make_node("Slice", ["qs", "one", "two"], ["s"], name="seq"),
             helper.make_node("Concat", ["b", "heads"], ["split"], name="split_shape", axis=0),
             helper.make_node("Concat", ["b", "s", "width"], ["merge"], name="merge_shape", axis=0),
             helper.make_node("Reshape", ["q", "split"], ["qh"], name="split_heads"),
             helper.make_node("Transpose", ["qh"], ["qt"], name="to_heads", perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["qh"], ["kt"], name="to_keys", perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["qt", "kt"], ["scores"], name="scores"),
             helper.make_node("MatMul", ["scores", "qt"], ["ctx"], name="context"),
             helper.make_node("Transpose", ["ctx"], ["ct"], name="back", perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["ct", "merge"], ["y"], name="merge_heads")]
    consts = {"zero": np.array([0]), "one": np.array([1]), "two": np.array([2]), "heads": np.array([-1, 4, 4]),
              "width": np.array([16])}
    return write(graph_of(nodes, {"q": ("batch", "sequence", 16)}, ["y"], consts), tmp_path)


def test_view_targets_read_the_shape_an_exporter_builds(tmp_path):
    path = attention(tmp_path)
    g = read_onnx(path, shapes={"q": (1, "sequence", 16)})  # batch static, as ExecuTorch exports it
    by = {n.name: view_target(n, g) for n in g.nodes if n.op == "Reshape"}
    assert by == {"split_heads": [FIXED, INFERRED, FIXED, FIXED], "merge_heads": [FIXED, SYMBOLIC, FIXED]}
    dynamic = read_onnx(path)
    assert view_target(next(n for n in dynamic.nodes if n.name == "split_heads"), dynamic)[0] == SYMBOLIC


def test_xnnpack_takes_only_static_reshapes(tmp_path):
    """ViewCopyConfig refuses a view whose target shape has a symbolic dim: the map puts that
    Reshape on the portable kernels, and says why."""
    hw = build_map(read_onnx(attention(tmp_path), shapes={"q": (1, "sequence", 16)}), map_target("xnnpack"))
    units = {n.name: (n.unit, n.why) for n in hw.nodes if n.op == "Reshape"}
    assert hw.units == ("XNNPACK", "CPU")
    assert units["split_heads"][0] == "XNNPACK"  # one -1, the batch fixed: a static view
    assert units["merge_heads"][0] == "CPU" and "computed at run time" in units["merge_heads"][1]
    static = build_map(read_onnx(attention(tmp_path), shapes={"q": (1, 8, 16)}), map_target("xnnpack"))
    assert all(n.unit == static.units[0] for n in static.nodes if n.op == "Reshape")


def test_the_delegation_record_is_compared_with_the_views_torch_matmul_makes(tmp_path):
    """Per batched MatMul torch's program has bmm, two expand_copy and three view_copy; with a
    dynamic sequence those views are symbolic (portable), with a static one they are delegated.
    The record below is what ExecuTorch 1.5.1 reports for such a graph (MiniLM's attention, scaled
    down): the map's counts must match it."""
    target = map_target("xnnpack")
    g = read_onnx(attention(tmp_path), shapes={"q": (1, "sequence", 16)})
    dynamic = {"aten_view_copy_default": {"delegated": 1, "portable": 7}, "aten_bmm_default": {"delegated": 2,
               "portable": 0}, "aten_expand_copy_default": {"delegated": 0, "portable": 4},
               "aten_permute_copy_default": {"delegated": 3, "portable": 0}, "getitem": {"delegated": 0, "portable": 2}}
    c = _compare_delegation(dynamic, (build_map(g, target), g), target, "test")
    assert (c.compared, c.agreed) == (17, 17) and c.not_reported == ("getitem",), c.to_dict()
    gs = read_onnx(attention(tmp_path), shapes={"q": (1, 8, 16)})
    static = {**dynamic, "aten_view_copy_default": {"delegated": 8, "portable": 0}}
    assert _compare_delegation(static, (build_map(gs, target), gs), target, "test").agreement == 1.0
    wrong = {**dynamic, "aten_view_copy_default": {"delegated": 8, "portable": 0}}  # a static record, dynamic map
    c = _compare_delegation(wrong, (build_map(g, target), g), target, "test")
    assert c.agreed == 17 - 7 and "ViewCopyConfig" in c.disagreements[0].why
