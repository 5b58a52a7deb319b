"""Ask the runtime that can answer here whether the map is right, node by node where it can say.

- ONNX Runtime: the execution provider each node ran on, from a profiled run with graph
  optimisations off (so nodes keep their names); a session that will not build means "does not load".
- OpenVINO: the device plugin's ``query_model``, matched to ONNX nodes through the tensor names the
  ONNX frontend keeps; a frontend that cannot read the model means "does not load".
- TFLite: the builtins a real conversion made (edgeship's converter: onnx2tf), against the builtins
  the map's lowering predicted, per operator type.
- TFLite Micro: the kernels the installed interpreter build registers (its ``Register_*`` symbols).
- ExecuTorch: the delegation record of a real XNNPACK lowering of the PyTorch source, per ATen op.

Every disagreement carries an explanation (``explanations.yaml`` for the known, systematic ones);
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

EXPLANATIONS_FILE = Path(__file__).with_name("explanations.yaml")


@functools.cache
def _explanations() -> dict[str, dict[str, str]]:
    import yaml

    return yaml.safe_load(EXPLANATIONS_FILE.read_text())


def explain(runtime: str, key: str, default: str | None = None) -> str:
    """The known, systematic reason ``runtime`` and the map disagree about ``key`` (an op or a kind
    of finding; ``explanations.yaml``), else ``default``."""
    found = _explanations().get(runtime, {}).get(key)
    if found is None and default is None:
        raise KeyError(f"explanations.yaml has no {runtime}: {key}")
    return found if found is not None else str(default)



def _explain_load_failure(runtime: str, why: str) -> str:
    if runtime.startswith("onnxruntime") and "locale" in why:
        return explain("onnxruntime", "locale")
    return "unexplained: the rules and the runtime differ on this model"


def cross_check(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any = None,
                shapes: dict[str, tuple[int, ...]] | None = None) -> CrossCheck | None:
    """The runtime's answer compared with ``hw``, or None (with a note on ``hw``) where no runtime
    here can answer for ``target``."""
    check = CHECKS.get(target.crosscheck)
    if check is None:
        hw.notes.append(f"no runtime here can answer for {target.name}: the map is the rules' prediction only")
        return None
    try:
        return check(hw, graph, model, target, source, shapes=shapes)
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
                                         _explain_load_failure(runtime, why)),)
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


def _check_onnxruntime(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any,
        **_: Any) -> CrossCheck:
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
            why = explain(runtime, "pattern") if runtime == "openvino" and "certain patterns" in n.why else None
            dis.append(Disagreement(n.name, n.op, mine, said[n.name], why or "unexplained"))
    folded = sum(1 for n in hw.nodes if n.status == FOLDED and n.name in said)
    note = f"{folded} node(s) the map folds ran in the runtime ({explain('onnxruntime', 'folded')})" if (
        folded and runtime == "onnxruntime") else ""
    if missing and runtime == "openvino":
        note = f"{len(missing)} node(s) not reported: {explain('openvino', 'not_reported')}"
    return CrossCheck(label, compared, agreed, tuple(dis), tuple(missing), note)


# -- OpenVINO --------------------------------------------------------------------------------------
def _check_openvino(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any,
        **_: Any) -> CrossCheck:
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
def _check_tflite(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any,
                  shapes: dict[str, tuple[int, ...]] | None = None, **_: Any) -> CrossCheck:
    if model.format != "onnx":
        raise _Unavailable("the map read the .tflite file itself: its builtins are the converter's own")
    from edgeship.targets.base import get_target

    tflite = get_target("tflite")
    if not tflite.availability().runs_here:
        raise _Unavailable(tflite.availability().why)
    label = "onnx2tf conversion (edgeship convert --target tflite)"
    made = _converted_builtins(tflite, model, shapes)
    if isinstance(made, EdgeshipError):
        exc = made
        map_says_no = any(n.status == UNPLACED and "no TFLite conversion" in n.why for n in hw.nodes)
        why = (explain("tflite", "dynamic_reshape") if "dynamic dimension" in str(exc) else
               explain("tflite", "symbolic") if "symbolic dim" in str(exc) else
               "unexplained: the lowering table expects a conversion")
        dis = () if map_says_no else (Disagreement("(model)", "-", "converts",
                                                   f"does not convert: {_first_line(exc)}", why),)
        return CrossCheck(label, 1, int(map_says_no), dis, note=f"the converter refuses it: {_first_line(exc)}")
    predicted: collections.Counter[str] = collections.Counter()
    for n in hw.nodes:
        if n.status in (PLACED, UNPLACED) and n.lowered:
            predicted.update(n.lowered)
    compared = max(sum(predicted.values()), sum(made.values()))
    agreed = sum(min(predicted[op], made[op]) for op in predicted.keys() | made.keys())
    dis = tuple(Disagreement(f"{op} ×{abs(made[op] - predicted[op])}", op, f"{predicted[op]} predicted",
                             f"{made[op]} in the converted file",
                             explain("tflite", op, "unexplained: the lowering table may need a case"))
                for op in sorted(predicted.keys() | made.keys()) if made[op] != predicted[op])
    return CrossCheck(f"{label}, builtins per op type", compared, agreed, dis,
                      note="compared per builtin type: a converted file does not keep ONNX node names")


# One conversion per file and shapes in a process: the TFLite targets (tflite-gpu, edgetpu) all ask it.
_CONVERTED: dict[tuple[Any, ...], collections.Counter[str] | EdgeshipError] = {}


def _converted_builtins(tflite: Any, model: Model, shapes: dict[str, tuple[int, ...]] | None,
                        ) -> collections.Counter[str] | EdgeshipError:
    """The builtins (and how many of each) edgeship's converter makes of ``model`` at ``shapes``,
    or the error that says why it cannot. Shapes given are fixed in the file it converts, as in a
    static export: the converter tries a graph as it is first, and keeps a dynamic batch of the
    file (then the TFLite converter cannot drop a trivial transpose or an identity reshape)."""
    from edgeship.core import onnx_file
    from edgeship.targets.hwmap.graph import read_tflite

    stat = model.path.stat()
    key = (str(model.path), stat.st_mtime_ns, stat.st_size, tuple(sorted((shapes or {}).items())))
    if key not in _CONVERTED:
        with tempfile.TemporaryDirectory(prefix="edgeship-xcheck-") as tmp:
            try:
                options = {"shapes": {k: list(v) for k, v in shapes.items()}} if shapes else {}
                if shapes:
                    static = onnx_file.with_fixed_dims(onnx_file.load(model.path, check=False), shapes)
                    model = Model.open(onnx_file.write(static, Path(tmp) / model.path.name))
                converted = tflite.convert(model, Path(tmp) / "model.tflite", **options)
                _CONVERTED[key] = collections.Counter(n.op for n in read_tflite(converted.path).nodes)
            except EdgeshipError as exc:
                _CONVERTED[key] = exc
    return _CONVERTED[key]


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
                        source: Any, **_: Any) -> CrossCheck:
    kernels = micro_kernels()
    said = {}
    for n in hw.nodes:
        if n.status in (PLACED, UNPLACED):
            ops = n.lowered if n.lowered is not None else (n.op,)
            said[n.name] = "MCU" if ops and all(op in kernels for op in ops) else "none"
    check = _compare_nodes("tflite-micro build kernels (Register_* symbols)", "tflite-micro", hw, said)
    dis = tuple(Disagreement(d.node, d.op, d.map_says, d.runtime_says,
                             explain("tflite-micro", "dtype") if "computes in int64" in _why(hw, d.node) else d.why)
                for d in check.disagreements)
    return CrossCheck(check.runtime, check.compared, check.agreed, dis, check.not_reported,
                      "per node: whether the build has a kernel for each builtin the node becomes")


def _why(hw: HardwareMap, node: str) -> str:
    return next((n.why for n in hw.nodes if n.name == node), "")


# -- ExecuTorch (XNNPACK delegation) -----------------------------------------------------------------
def _aten_key(name: str) -> str:
    """'aten_add_tensor', 'aten.add.Tensor', 'add.Tensor', 'dim_order_ops__clone_dim_order_default' -> 'add',
    'clone_dim_order': one spelling for the delegation record's names and the rules' ATen names."""
    name = name.lower().replace(".", "_")
    for prefix in ("aten_", "dim_order_ops_"):
        name = name.removeprefix(prefix)
    name = name.strip("_")
    for suffix in ("_default", "_tensor_scalar", "_tensor", "_scalar", "_dim_int_list", "_dim_intlist", "_dim", "_vec"):
        name = name.removesuffix(suffix)
    return name


# The ATen op torch.export makes for ONNX ops the XNNPACK rules do not name (they run on portable kernels).
PORTABLE_ATEN = {"LayerNormalization": "native_layer_norm", "Gather": "embedding", "Erf": "erf",
                 "Expand": "expand_copy", "Cast": "_to_copy", "ReduceSum": "sum",
                 "ReduceL2": "linalg_vector_norm / pow / sum",  # the edge dialect decomposes the norm
                 "Where": "where", "Shape": "sym_size", "Softmax": "_softmax"}


def _check_executorch(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget, source: Any,
                      **_: Any) -> CrossCheck:
    if source is None:
        raise _Unavailable("the ExecuTorch cross-check lowers the PyTorch source; map a zoo:NAME or "
                           "file.py:factory spec, not an ONNX file")
    from edgeship.targets.base import get_target

    executorch = get_target("executorch")
    if not executorch.availability().runs_here:
        raise _Unavailable(executorch.availability().why)
    program, options, compared, where = _program_like(hw, graph, model, target, source)
    with tempfile.TemporaryDirectory(prefix="edgeship-xcheck-") as tmp:
        pte = executorch.convert(program, Path(tmp) / "model.pte", **options)
    return _compare_delegation(pte.facts["delegation"]["by_operator"], compared, target, where)


def _program_like(hw: HardwareMap, graph: Graph, model: Model, target: MapTarget,
                  source: Any) -> tuple[Any, dict[str, Any], tuple[HardwareMap, Graph], str]:
    """The PyTorch source and convert options whose ExecuTorch program matches the map's graph, and
    the map (and graph) to compare that program with. A static graph is lowered statically, with
    example inputs of its shapes. A dynamic one is lowered as edgeship lowers it (batch at the
    example's, the source's other dynamic axes dynamic), and compared with the map of the graph at
    those shapes: a dynamic batch the program does not have would make different views symbolic."""
    from edgeship.targets.hwmap.engine import build_map
    from edgeship.targets.hwmap.graph import read_onnx

    inputs = [n for n in source.example_inputs if n in graph.inputs]
    if not graph.dynamic_inputs:
        fixed = {n: tuple(int(d) for d in graph.tensor(n).shape or ()) for n in inputs}  # type: ignore[arg-type]
        return _source_at(source, fixed), {"dynamic": False}, (hw, graph), "lowered with static shapes, as mapped"
    like: dict[str, tuple[int | str, ...]] = {}
    for name in inputs:
        example, dims = tuple(source.example_inputs[name].shape), graph.tensor(name).shape or ()
        axes = source.dynamic_axes.get(name, {})
        like[name] = tuple(d if isinstance(d, int) else int(example[i]) if i == 0 or i not in axes else str(d)
                           for i, d in enumerate(dims))
    if all(tuple(graph.tensor(n).shape or ()) == like[n] for n in inputs):
        return source, {}, (hw, graph), "lowered with the source's dynamic axes, as mapped"
    at = read_onnx(model.path, shapes=like)
    shown = "; ".join(f"{n} [{', '.join(map(str, d))}]" for n, d in like.items())
    return source, {}, (build_map(at, target, hw.model), at), (
        f"lowered as edgeship lowers it (batch at the example's, other dynamic axes dynamic) and compared with "
        f"the map at those shapes ({shown}): the program fixes dims the ONNX graph leaves dynamic")


def _source_at(source: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    """``source`` with example inputs of ``shapes`` (ones of each input's dtype: the lowering traces
    shapes, not values)."""
    import dataclasses

    import torch

    examples = {n: t if tuple(t.shape) == shapes.get(n, tuple(t.shape)) else torch.ones(shapes[n], dtype=t.dtype)
                for n, t in source.example_inputs.items()}
    return dataclasses.replace(source, example_inputs=examples)


def _matmul_views(node: Any, graph: Graph) -> list[list[int | str | None]] | None:
    """The target shapes of the views torch's matmul makes around its bmm when both operands are
    computed tensors of rank 3 or more (ONNX MatMul broadcasts batch dims itself; aten.matmul
    expands both operands, folds the batch into one dim, calls bmm and unfolds the result:
    expand_copy x2, view_copy x3, bmm in the ExecuTorch program); None for other MatMuls."""
    a, b = (graph.tensor(i) for i in node.inputs[:2])
    out = graph.tensor(node.outputs[0])
    if a.const or b.const or not a.shape or not b.shape or len(a.shape) < 3 or len(b.shape) < 3 or not out.shape:
        return None

    def folded(shape: tuple[Any, ...]) -> list[int | str | None]:
        batch = shape[:-2]
        fixed = all(isinstance(d, int) and d > 0 for d in batch)
        return [int(np.prod(batch)) if fixed else None, *shape[-2:]]

    return [folded(a.shape), folded(b.shape), list(out.shape)]


def _compare_delegation(record: dict[str, dict[str, int]], compared_map: tuple[HardwareMap, Graph],
                        target: MapTarget, where: str) -> CrossCheck:
    """Per ATen operator of the delegation record: whether the map puts what stands for it on XNNPACK
    too. Where either side splits an operator (some delegated, some not), the counts are compared:
    the ONNX nodes the map judges, and the views torch's matmul makes, judged by the same view rule."""
    hw, graph = compared_map
    rules = target.accelerator.rules
    view_limits = (rules.ops["Reshape"].get("view_target") or {}) if "Reshape" in rules.ops else {}
    nodes = {n.name: n for n in graph.nodes}
    on_xnnpack: collections.Counter[str] = collections.Counter()
    counted: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])  # key -> [XNNPACK, portable]
    seen: set[str] = set()  # every ATen op some ONNX node of the graph stands for
    for n in hw.nodes:
        if n.status not in (PLACED, UNPLACED):
            continue
        rule = rules.ops.get(n.op)
        names = [a.strip() for a in (str(rule.get("aten") or "") if rule else PORTABLE_ATEN.get(n.op, "")).split("/")]
        names = [_aten_key(a) for a in names if a]
        on = n.status == PLACED and n.unit == target.accelerator.name
        views = _matmul_views(nodes[n.name], graph) if n.op == "MatMul" and n.name in nodes else None
        if views is not None:
            names = ["bmm"]
            for shape in views:
                ok = on and sum(1 for d in shape if not (isinstance(d, int) and d > 0)) <= view_limits.get(
                    "max_symbolic", len(shape))
                counted["view_copy"][0 if ok else 1] += 1
            counted["expand_copy"][1] += 2  # no partitioner config takes expand_copy
            seen.update(("view_copy", "expand_copy"))
        seen.update(names)
        for key in names:
            on_xnnpack[key] += on
        if len(names) == 1:
            counted[names[0]][0 if on else 1] += 1
    dis, missing, compared, agreed = [], [], 0, 0
    for op, counts in record.items():
        key = _aten_key(op)
        if key not in seen:  # no ONNX node stands for it (folded at export, or a Python getitem)
            missing.append(op)
            continue
        delegated, portable = counts["delegated"], counts["portable"]
        total = delegated + portable
        compared += total
        mine = counted.get(key, [0, 0])
        if (delegated and portable) or (mine[0] and mine[1]):
            agree = min(mine[0], delegated) + min(mine[1], portable)
            said = f"{mine[0]} XNNPACK / {mine[1]} portable"
        else:
            map_delegates = on_xnnpack[key] > 0
            agree = total if map_delegates == (delegated > 0) else 0
            said = "XNNPACK" if map_delegates else "portable"
        agreed += agree
        if agree < total:
            dis.append(Disagreement(op, key, said, f"{delegated} delegated / {portable} portable",
                                    _explain_aten(key, counts)))
    note = f"compared per ATen operator, weighted by the lowering's node counts; {where}"
    if missing:
        note += (f"; {len(missing)} ATen op(s) with no ONNX counterpart (the export folds them, e.g. batch norm "
                 f"into the convolution, or they are getitem/view plumbing): {', '.join(missing[:8])}")
    return CrossCheck("executorch XNNPACK partitioner (delegation record), per ATen op", compared, agreed,
                      tuple(dis), tuple(missing), note)


def _explain_aten(key: str, counts: dict[str, int]) -> str:
    if key == "view_copy":
        return explain("executorch", "view_copy")
    if counts["delegated"] and counts["portable"]:
        return explain("executorch", "split")
    if key in ("unsqueeze_copy", "permute_copy", "clone", "_to_dim_order_copy", "expand_copy"):
        return explain("executorch", "layout")
    return "unexplained: the executorch-xnnpack rules' aten names may need this op"


CHECKS: dict[str, Callable[..., CrossCheck]] = {
    "onnxruntime": _check_onnxruntime, "openvino": _check_openvino, "tflite": _check_tflite,
    "tflite-micro": _check_tflite_micro, "executorch": _check_executorch}
