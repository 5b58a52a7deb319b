"""Layer-wise localisation: where in the graph a candidate's error first appears.

Both ONNX models are run with every intermediate tensor exposed as an output (graph optimisations
off, so tensors keep their names); tensors the two graphs share by name are compared in the
candidate's topological order, and the first one whose worst-row cosine falls below the threshold
is the place to look (a node to keep in higher precision, an op the converter got wrong).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgeship.check.metrics import output_metrics
from edgeship.core.artifact import Model
from edgeship.targets.onnxruntime.runner import OrtRunner

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


def _run_exposed(model: Model, feeds: list[Feeds]) -> tuple[list[Feeds], list[tuple[str, str, str]]]:
    """Every node output of ``model`` on each feed (graph optimisations off, so tensors keep their
    names), and (tensor, node, op type) in graph order."""
    with OrtRunner(model, expose="all", graph_optimization="disable") as runner:
        outs = [runner.infer(f) for f in feeds]
        return outs, list(runner.tensor_order)


def first_divergence(reference: Model, candidate: Model, feeds: list[Feeds],
                     cosine_threshold: float = 0.999) -> Divergence | None:
    """The first shared tensor (in the candidate's order) whose worst-row cosine is below the threshold."""
    ref_outs, _ = _run_exposed(reference, feeds)
    cand_outs, order = _run_exposed(candidate, feeds)
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
