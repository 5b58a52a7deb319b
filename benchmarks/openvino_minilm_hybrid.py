"""MiniLM on OpenVINO: static INT8 with some weight MatMuls left to per-token run-time INT8, and
int8-weight's coarser activation groups, judged as the int8 search judges (``data:sentences:select``
and its probes, the MiniLM gates tightened by the search margin). Accuracy only: the dead ends the
README records for "MiniLM ≥ 3× ORT FP32" (no timing: the candidates that would be fast fail).

    .venv/bin/python benchmarks/openvino_minilm_hybrid.py            # about 2 minutes on 2 cores (AMD EPYC)
    .venv/bin/python benchmarks/openvino_minilm_hybrid.py --json out.json

Hybrid: NNCF's static INT8 (transformer scheme, SmoothQuant) with the MatMuls of the named roles in
its ignored scope, whose weights are then compressed to INT8 (``compress_weights``): OpenVINO's CPU
plugin quantizes those layers' activations at run time, per token and per 128 input channels.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _timing import log

MINILM_GATES = ("cosine_mean>=0.995", "cosine_min>=0.98")
# weight MatMul roles, each a set of six (one per layer): "scores" are the activation-activation ones
HYBRIDS: tuple[tuple[str, ...], ...] = ((), ("attn_out",), ("attn_out", "ffn_down"),
                                        ("attn_out", "ffn_down", "ffn_up"))
GROUPS = (128, 192)
BUCKETS = (8, 16, 32, 64, 128)


def matmul_roles(ov_model: Any) -> dict[str, list[str]]:
    """The MatMuls by role, from the graph: Q/K/V and FFN-up read a layer norm (FFN-up widens to
    more channels than the hidden size), the attention output reads the heads' reshape, FFN-down
    the GELU's product; the rest multiply two activations (attention scores, context)."""
    roles: dict[str, list[str]] = {}
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        kinds = [op.input_value(i).get_node().get_type_name() for i in range(2)]
        if "Constant" not in kinds and "Convert" not in kinds:
            roles.setdefault("scores", []).append(op.get_friendly_name())
            continue
        width = op.get_output_partial_shape(0)[-1].get_length()
        hidden = op.get_input_partial_shape(0)[-1].get_length()
        role = {"Reshape": "attn_out", "Multiply": "ffn_down"}.get(kinds[0], "ffn_up" if width > hidden else "qkv")
        roles.setdefault(role, []).append(op.get_friendly_name())
    return roles


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="also write the verdicts to this JSON file")
    args = ap.parse_args()

    import openvino as ov

    from edgeship.check.selection import int8_selector
    from edgeship.core.artifact import Model
    from edgeship.core.data import load_data
    from edgeship.export.exporter import export
    from edgeship.targets.cpu import cpu_info
    from edgeship.targets.openvino.converter import _nncf_int8, _resolved
    from edgeship.targets.openvino.offline import nncf as load_nncf
    from edgeship.targets.openvino.target import OpenVinoTargetConfig

    nncf = load_nncf()
    work = Path(tempfile.mkdtemp(prefix="minilm-hybrid-"))
    log(f"exporting zoo:minilm to {work}")
    model = Model.open(export("zoo:minilm", work / "minilm.onnx").path)
    calib = load_data("data:sentences:calib", model.io)
    selector = int8_selector(model, load_data("data:sentences:select", model.io), MINILM_GATES, calib=calib)
    base = ov.Core().read_model(str(model.path))
    roles = matmul_roles(base)
    weights = [n for role, names in roles.items() if role != "scores" for n in names]
    cfg = _resolved(OpenVinoTargetConfig(precision="int8", static_shapes=True, length_buckets=BUCKETS), model)
    facts = {"static_shapes": True, "length_buckets": list(BUCKETS)}

    def judge(label: str, path: Path, **extra: Any) -> dict[str, Any]:
        candidate = model.derive(path, "convert:openvino", cfg.to_dict(), fmt="openvino", io=model.io,
                                 facts={**facts, **extra})
        _, (record,) = selector([(label, candidate)])
        row = {"label": label, "passed": record["passed"],
               **{f"{split}_{k}": record[split][k] for split in ("selection", "probes")
                  for k in ("cosine_mean", "cosine_min")}}
        log(f"  {label}: {'pass' if row['passed'] else 'fail'}; select mean {row['selection_cosine_mean']:.4f} "
            f"min {row['selection_cosine_min']:.4f}; probes mean {row['probes_cosine_mean']:.4f} "
            f"min {row['probes_cosine_min']:.4f}")
        return row

    rows = []
    for dynamic_roles in HYBRIDS:
        dynamic = [n for role in dynamic_roles for n in roles[role]]
        label = "static, dynamic: " + (", ".join(dynamic_roles) or "none")
        log(f"quantizing {label} ({len(dynamic)} of {len(weights)} weight MatMuls dynamic)")
        quantized, _ = _nncf_int8(base.clone(), model.io, cfg, calib, dynamic)
        if dynamic:
            static = [n for n in weights if n not in dynamic]
            quantized = nncf.compress_weights(quantized, mode=nncf.CompressWeightsMode.INT8_ASYM,
                                              ignored_scope=nncf.IgnoredScope(names=static, validate=False))
        path = work / f"hybrid-{len(rows)}.xml"
        ov.save_model(quantized, str(path), compress_to_fp16=False)
        rows.append(judge(label, path, inference_precision="f32", activation_group_size=128))
    log("int8-weight (compress_weights INT8_ASYM) at coarser run-time activation groups")
    weight_only = work / "int8-weight.xml"
    ov.save_model(nncf.compress_weights(base.clone(), mode=nncf.CompressWeightsMode.INT8_ASYM), str(weight_only),
                  compress_to_fp16=False)
    for group in GROUPS:
        rows.append(judge(f"int8-weight, groups of {group}", weight_only, inference_precision="bf16",
                          activation_group_size=group))
    result = {"cpu": cpu_info().model, "gates": list(selector.gates), "rows": rows}  # type: ignore[attr-defined]
    log(f"CPU: {result['cpu']}; gates (with the search margin): {', '.join(result['gates'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
