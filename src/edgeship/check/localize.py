"""Layer-wise localisation: where in the graph a candidate's error first appears.

Both ONNX models are run with every intermediate tensor exposed as an output (graph optimisations
off, so tensors keep their names); tensors the two graphs share by name are compared in the
candidate's topological order, and the first one whose worst-row cosine falls below the threshold
is the place to look (a node to keep in higher precision, an op the converter got wrong).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.check.metrics import output_metrics
from edgeship.core.artifact import Model

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass
class Divergence:
    tensor: str
    node: str
    op_type: str
    cosine_min: float
    rel_err_max: float
    index: int  # position in the candidate's topological order
    compared: int  # how many shared tensors were compared

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _expose_all(path: Path, out: Path) -> list[tuple[str, str, str]]:
    """Write a copy of the model whose outputs include every node output; returns
    (tensor, node name, op type) in topological order."""
    import onnx

    from edgeship.core.onnx_file import load

    model = load(path, load_weights=True, check=False)
    existing = {o.name for o in model.graph.output}
    order = []
    for node in model.graph.node:
        for t in node.output:
            if t and t not in existing:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
                existing.add(t)
            if t:
                order.append((t, node.name, node.op_type))
    onnx.save(model, str(out))
    return order


def _run_all_tensors(path: Path, feeds: list[Feeds]) -> list[dict[str, np.ndarray]]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    results = []
    for f in feeds:
        outs = sess.run(names, {k: v for k, v in f.items() if k in wanted})
        results.append(dict(zip(names, outs, strict=True)))
    return results


def first_divergence(reference: Model, candidate: Model, feeds: list[Feeds],
                     cosine_threshold: float = 0.999) -> Divergence | None:
    """The first shared tensor (in the candidate's order) whose worst-row cosine is below the threshold."""
    with tempfile.TemporaryDirectory(prefix="edgeship-localize-") as tmp:
        ref_path, cand_path = Path(tmp) / "ref.onnx", Path(tmp) / "cand.onnx"
        _expose_all(reference.path, ref_path)
        order = _expose_all(candidate.path, cand_path)
        ref_outs = _run_all_tensors(ref_path, feeds)
        cand_outs = _run_all_tensors(cand_path, feeds)
    compared = 0
    for index, (tensor, node, op) in enumerate(order):
        if tensor not in ref_outs[0]:
            continue
        r = [o[tensor] for o in ref_outs]
        c = [o[tensor] for o in cand_outs]
        if any(np.shape(a) != np.shape(b) or not np.issubdtype(np.asarray(a).dtype, np.floating)
               or not np.issubdtype(np.asarray(b).dtype, np.floating) for a, b in zip(r, c, strict=True)):
            continue
        compared += 1
        m = output_metrics(r, c, classifier=False)
        if m["cosine_min"] < cosine_threshold or m["nonfinite"]:
            return Divergence(tensor, node, op, m["cosine_min"], m["rel_err_max"], index, compared)
    return None
