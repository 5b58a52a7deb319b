"""Ask the runtime that can answer here whether the map is right, node by node where it can say.

- ONNX Runtime: the execution provider each node ran on, from a profiled run with graph
  optimisations off (so nodes keep their names); a session that will not build means "does not load".
- OpenVINO: the device plugin's ``query_model``, matched to ONNX nodes through the tensor names the
  ONNX frontend keeps; a frontend that cannot read the model means "does not load".
- TFLite: the builtins a real conversion made (edgeship's converter: onnx2tf), against the builtins
  the map's lowering predicted, per operator type.
- TFLite Micro: the kernels the installed interpreter build registers (its ``Register_*`` symbols).
- ExecuTorch: the delegation record of a real XNNPACK lowering of the PyTorch source, per ATen op.

Every disagreement carries an explanation (:data:`EXPLAIN` for the known, systematic ones);
"unexplained" marks one to study. Targets whose runtime is not here get ``None`` and a note."""

from __future__ import annotations

import collections
import functools
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import Model
from edgeship.core.errors import EdgeshipError, NotRunnableHere
from edgeship.core.registry import is_installed
from edgeship.targets.hwmap.graph import Graph
from edgeship.targets.hwmap.profiles import MapTarget
from edgeship.targets.hwmap.result import ELIDED, FOLDED, PLACED, UNPLACED, CrossCheck, Disagreement, HardwareMap

# Known, systematic reasons a runtime and the map disagree (keyed by runtime and op).
EXPLAIN: dict[tuple[str, str], str] = {
    ("tflite", "TRANSPOSE"): "onnx2tf inserts layout transposes (NHWC <-> NCHW) around ops whose axis order "
                             "matters (Flatten/Reshape after a conv); the ONNX graph has none",
    ("tflite", "RESHAPE"): "onnx2tf reshapes around layout changes and for Squeeze/Unsqueeze/Flatten variants",
    ("tflite", "PAD"): "onnx2tf makes explicit PADs for paddings TFLite's SAME/VALID cannot express",
    ("tflite", "RELU"): "fused into the producer's fused_activation_function (the map's 'fused' case missed it)",
    ("tflite", "RELU6"): "fused into the producer's fused_activation_function (the map's 'fused' case missed it)",
    ("tflite", "ADD"): "a bias or residual add folded by the converter (or, the other way, split out of a fused op)",
    ("tflite", "MUL"): "a scale folded into a neighbour, or a BatchNormalization the map fused but the converter kept",
    ("tflite", "QUANTIZE"): "the converter's quantization of the float inputs (int8 conversions) is not an ONNX node",
    ("tflite", "DEQUANTIZE"): "the converter's dequantization of the outputs (int8 conversions) is not an ONNX node",
    ("tflite-micro", "dtype"): "the build has the kernel, but for int8/int16/float32 tensors: the rule refuses "
                               "the node's int64 tensors (shape arithmetic), which the kernels do not take",
    ("openvino", "not_reported"): "the ONNX frontend folded or fused it: no OpenVINO op keeps its output name",
    ("openvino", "pattern"): "the frontend supports sequence ops only in patterns it can fold; this graph's "
                             "pattern is not one of them",
    ("onnxruntime", "folded"): "converters fold it; ONNX Runtime with optimisations off runs it on the CPU",
}


def cross_check(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget,
                source: Any = None) -> CrossCheck | None:
    """The runtime's answer compared with ``hw``, or None (with a note on ``hw``) where no runtime
    here can answer for ``target``."""
    check = CHECKS.get(target.crosscheck)
    if check is None:
        hw.notes.append(f"no runtime here can answer for {target.name}: the map is the rules' prediction only")
        return None
    try:
        return check(hw, graph, model, target, source)
    except (NotRunnableHere, _Unavailable) as exc:
        hw.notes.append(f"cross-check skipped: {exc}")
        return None


class _Unavailable(Exception):
    """The runtime that would answer is not installed or has no such device here."""


def _synthetic_feeds(model: Model) -> dict[str, np.ndarray]:
    """One small random sample per input: symbolic dims at 1 (batch) or 4, strings as "a"."""
    rng = np.random.default_rng(0)
    feeds = {}
    for t in model.io.inputs:
        shape = tuple(d if isinstance(d, int) and d > 0 else (1 if i == 0 else 4) for i, d in enumerate(t.shape))
        if t.dtype in ("str", "object", "str_", "bytes_"):
            feeds[t.name] = np.full(shape, "a", dtype=object)
        elif t.dtype == "bool":
            feeds[t.name] = rng.integers(0, 2, shape).astype(bool)
        elif "int" in t.dtype:
            feeds[t.name] = rng.integers(0, 2, shape).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(shape).astype(t.dtype)
    return feeds


def _model_level(runtime: str, hw: HardwareMap, loads: bool, why: str) -> CrossCheck:
    """When the runtime refuses the whole model, the one comparison is whether the map says so too."""
    agree = loads == hw.loads
    dis = () if agree else (Disagreement("(model)", "-", "loads" if hw.loads else "does not load",
                                         "loads" if loads else f"does not load: {why}",
                                         "unexplained: the rules and the runtime differ on this model"),)
    return CrossCheck(runtime, 1, int(agree), dis, note="" if loads else f"the runtime does not load it: {why}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# -- ONNX Runtime ----------------------------------------------------------------------------------
PROVIDER_UNIT = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "GPU",
                 "TensorrtExecutionProvider": "GPU (TensorRT)", "OpenVINOExecutionProvider": "OpenVINO",
                 "CoreMLExecutionProvider": "CoreML", "NnapiExecutionProvider": "NNAPI",
                 "QNNExecutionProvider": "QNN HTP", "XnnpackExecutionProvider": "XNNPACK"}


def _named_proto(model: Model) -> Any:
    """The model with every node named as the map names it (ORT's profile reports names)."""
    from edgeship.core.onnx_file import load

    proto = load(model.path, load_weights=True, check=False)
    for i, n in enumerate(proto.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    return proto


def _check_onnxruntime(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any) -> CrossCheck:
    import onnxruntime

    from edgeship.core.errors import BadInput
    from edgeship.targets.base import get_target
    from edgeship.targets.onnxruntime.runner import OrtRunner

    deploy = get_target(target.deploy)
    deploy.require_runnable()  # an execution provider this build lacks: NotRunnableHere
    provider = getattr(deploy, "provider", "cpu")
    label = f"onnxruntime {onnxruntime.__version__} ({provider} provider, per-node profile)"
    if model.format != "onnx":
        raise _Unavailable("ONNX Runtime answers for ONNX files only")
    with tempfile.TemporaryDirectory(prefix="edgeship-xcheck-") as tmp:
        runner = OrtRunner(_named_proto(model), graph_optimization="disable", provider=provider, profile=True,
                           profile_dir=tmp, load_error=BadInput)
        try:
            runner.activate()
        except BadInput as exc:
            return _model_level(label, hw, False, _first_line(exc))
        try:
            runner.infer(_synthetic_feeds(model))
            ran = {n["node"]: PROVIDER_UNIT.get(n["provider"], n["provider"]) for n in runner.node_providers()}
        except Exception as exc:  # a model that loads but cannot run on random inputs (sequences, strings)
            agree = _model_level(label, hw, True, "")
            return CrossCheck(label, agree.compared, agree.agreed, agree.disagreements,
                              note=f"it loads, but does not run on synthetic inputs ({type(exc).__name__}): "
                                   "compared whether it loads only")
        finally:
            runner.close()
    return _compare_nodes(label, "onnxruntime", hw, ran)


def _compare_nodes(label: str, runtime: str, hw: HardwareMap, said: dict[str, str]) -> CrossCheck:
    """Node by node: the map's unit against the runtime's, for the nodes both name."""
    dis, missing, compared, agreed = [], [], 0, 0
    for n in hw.nodes:
        if n.status in (FOLDED, ELIDED):
            continue
        if n.name not in said:
            missing.append(n.name)
            continue
        compared += 1
        mine = n.unit if n.status == PLACED else "none"
        if said[n.name] == mine:
            agreed += 1
        else:
            why = EXPLAIN.get((runtime, "pattern")) if runtime == "openvino" and "certain patterns" in n.why else None
            dis.append(Disagreement(n.name, n.op, mine, said[n.name], why or "unexplained"))
    folded = sum(1 for n in hw.nodes if n.status == FOLDED and n.name in said)
    note = f"{folded} node(s) the map folds ran in the runtime ({EXPLAIN[('onnxruntime', 'folded')]})" if (
        folded and runtime == "onnxruntime") else ""
    if missing and runtime == "openvino":
        note = f"{len(missing)} node(s) not reported: {EXPLAIN[('openvino', 'not_reported')]}"
    return CrossCheck(label, compared, agreed, tuple(dis), tuple(missing), note)


# -- OpenVINO --------------------------------------------------------------------------------------
def _check_openvino(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any) -> CrossCheck:
    if not is_installed("openvino"):
        raise _Unavailable("OpenVINO is not installed (pip install 'edgeship[openvino]')")
    import openvino as ov

    device = hw.units[0]
    core = ov.Core()
    if device not in core.available_devices:
        raise _Unavailable(f"no OpenVINO {device} device here (devices: {', '.join(core.available_devices)})")
    label = f"openvino {ov.__version__.split('-')[0]} query_model ({device})"
    try:
        ov_model = core.read_model(str(model.path))
        supported = core.query_model(ov_model, device)
    except Exception as exc:  # the frontend or plugin refuses the model: it does not load
        return _model_level(label, hw, False, _first_line(exc))
    producer: dict[str, str] = {}
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() in ("Parameter", "Constant"):
            continue
        for out in op.outputs():
            for name in out.get_names():
                producer.setdefault(name, op.get_friendly_name())
    said = {}
    for n in graph.nodes:
        ops = {producer[o] for o in n.outputs if o in producer}
        if ops:
            said[n.name] = device if any(o in supported for o in ops) else "none"
    return _compare_nodes(label, "openvino", hw, said)


# -- TFLite (conversion) -----------------------------------------------------------------------------
def _check_tflite(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any) -> CrossCheck:
    if model.format != "onnx":
        raise _Unavailable("the map read the .tflite file itself: its builtins are the converter's own")
    from edgeship.targets.base import get_target
    from edgeship.targets.hwmap.graph import read_tflite

    tflite = get_target("tflite")
    if not tflite.availability().runs_here:
        raise _Unavailable(tflite.availability().why)
    with tempfile.TemporaryDirectory(prefix="edgeship-xcheck-") as tmp:
        label = "onnx2tf conversion (edgeship convert --target tflite)"
        try:
            converted = tflite.convert(model, Path(tmp) / "model.tflite")
        except EdgeshipError as exc:
            map_says_no = any(n.status == UNPLACED and "no TFLite conversion" in n.why for n in hw.nodes)
            dis = () if map_says_no else (Disagreement("(model)", "-", "converts", f"does not convert: "
                                                       f"{_first_line(exc)}", "unexplained: the lowering table "
                                                       "expects a conversion"),)
            return CrossCheck(label, 1, int(map_says_no), dis, note=f"the converter refuses it: {_first_line(exc)}")
        made = collections.Counter(n.op for n in read_tflite(converted.path).nodes)
    predicted: collections.Counter[str] = collections.Counter()
    for n in hw.nodes:
        if n.status in (PLACED, UNPLACED) and n.lowered:
            predicted.update(n.lowered)
    compared = max(sum(predicted.values()), sum(made.values()))
    agreed = sum(min(predicted[op], made[op]) for op in predicted.keys() | made.keys())
    dis = tuple(Disagreement(f"{op} ×{abs(made[op] - predicted[op])}", op, f"{predicted[op]} predicted",
                             f"{made[op]} in the converted file",
                             EXPLAIN.get(("tflite", op), "unexplained: the lowering table may need a case"))
                for op in sorted(predicted.keys() | made.keys()) if made[op] != predicted[op])
    return CrossCheck(f"{label}, builtins per op type", compared, agreed, dis,
                      note="compared per builtin type: a converted file does not keep ONNX node names")


# -- TFLite Micro (the interpreter's kernels) ---------------------------------------------------------
@functools.cache
def micro_kernels() -> frozenset[str]:
    """The builtin kernels the installed tflite-micro build registers (its Register_* symbols)."""
    if not is_installed("tflite_micro"):
        raise _Unavailable("tflite-micro is not installed (pip install 'edgeship[micro]')")
    import tflite_micro

    lib = next(Path(tflite_micro.__file__).parent.rglob("_runtime*.so"), None)
    if lib is None:
        raise _Unavailable("the tflite-micro package has no _runtime library to read")
    try:
        out = subprocess.run(["nm", "-C", str(lib)], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"cannot list the tflite-micro build's kernels with nm ({type(exc).__name__})") from None
    return frozenset(re.findall(r"tflite::(?:micro::)?Register_([A-Z0-9_]+)\(\)", out))


def _check_tflite_micro(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget,
                        source: Any) -> CrossCheck:
    kernels = micro_kernels()
    said = {}
    for n in hw.nodes:
        if n.status in (PLACED, UNPLACED):
            ops = n.lowered if n.lowered is not None else (n.op,)
            said[n.name] = "MCU" if ops and all(op in kernels for op in ops) else "none"
    check = _compare_nodes("tflite-micro build kernels (Register_* symbols)", "tflite-micro", hw, said)
    dis = tuple(Disagreement(d.node, d.op, d.map_says, d.runtime_says,
                             EXPLAIN[("tflite-micro", "dtype")] if "computes in int64" in _why(hw, d.node) else d.why)
                for d in check.disagreements)
    return CrossCheck(check.runtime, check.compared, check.agreed, dis, check.not_reported,
                      "per node: whether the build has a kernel for each builtin the node becomes")


def _why(hw: HardwareMap, node: str) -> str:
    return next((n.why for n in hw.nodes if n.name == node), "")


# -- ExecuTorch (XNNPACK delegation) -----------------------------------------------------------------
def _aten_key(name: str) -> str:
    """'aten_convolution_default', 'aten.convolution.default', 'convolution.default' -> 'convolution'."""
    name = name.removeprefix("aten").strip("._")
    for suffix in ("default", "Tensor", "Tensor_Scalar", "dim", "vec"):
        name = re.sub(rf"[._]{suffix}$", "", name)
    return name


def _check_executorch(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any) -> CrossCheck:
    if source is None:
        raise _Unavailable("the ExecuTorch cross-check lowers the PyTorch source; map a zoo:NAME or "
                           "file.py:factory spec, not an ONNX file")
    from edgeship.targets.base import get_target

    executorch = get_target("executorch")
    if not executorch.availability().runs_here:
        raise _Unavailable(executorch.availability().why)
    with tempfile.TemporaryDirectory(prefix="edgeship-xcheck-") as tmp:
        pte = executorch.convert(source, Path(tmp) / "model.pte")
    record = pte.facts["delegation"]["by_operator"]
    rules = target.accelerator.rules
    on_xnnpack: collections.Counter[str] = collections.Counter()
    for n in hw.nodes:
        if n.status == PLACED and n.unit == target.accelerator.name:
            rule = rules.ops.get(n.op)
            for aten in str(rule.get("aten") or "" if rule else "").split("/"):
                if aten.strip():
                    on_xnnpack[_aten_key(aten.strip())] += 1
    dis, compared, agreed = [], 0, 0
    for op, counts in record.items():
        key = _aten_key(op)
        total = counts["delegated"] + counts["portable"]
        compared += total
        map_delegates = on_xnnpack[key] > 0
        if map_delegates == (counts["delegated"] > 0) and not (counts["delegated"] and counts["portable"]):
            agreed += total
        else:
            agreed += counts["delegated"] if map_delegates else counts["portable"]
            dis.append(Disagreement(op, key, "XNNPACK" if map_delegates else "portable",
                                    f"{counts['delegated']} delegated / {counts['portable']} portable",
                                    _explain_aten(key, counts)))
    return CrossCheck("executorch XNNPACK partitioner (delegation record), per ATen op", compared, agreed,
                      tuple(dis), note="compared per ATen operator, weighted by the lowering's node counts")


def _explain_aten(key: str, counts: dict[str, int]) -> str:
    if counts["delegated"] and counts["portable"]:
        return ("the partitioner takes some nodes of this op and not others (by dtype, rank or constant weights); "
                "the map judges the ONNX nodes, which do not map one to one")
    if key in ("view_copy", "unsqueeze_copy", "permute_copy", "clone", "_to_dim_order_copy", "expand_copy"):
        return ("layout/view ops the partitioner keeps with their neighbours or leaves out; no ONNX node matches "
                "one to one")
    return "unexplained: the executorch-xnnpack rules' aten names may need this op"


CHECKS: dict[str, Callable[..., CrossCheck]] = {
    "onnxruntime": _check_onnxruntime, "openvino": _check_openvino, "tflite": _check_tflite,
    "tflite-micro": _check_tflite_micro, "executorch": _check_executorch}
