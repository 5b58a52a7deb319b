"""``make demo``: the main job on the bundled real models, then a report per model.

Runs ``edgeship optimize`` on MiniLM (sentence embeddings), EfficientNet-Lite0 (ImageNet
classifier) and the digits CNN, each on its own held-out data, and prints where the reports are.
When the ship extra is installed it ends by publishing the chosen models to a local signed update
repository and updating a local device agent once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# Recipe fields per model; data defaults to each model's own held-out split. Variants are chosen so
# the whole demo runs in a few minutes on 2 cores: `edgeship optimize` alone tries every variant.
DEMO_MODELS = [
    {"model": "zoo:digits-cnn", "out": "runs/digits-cnn"},
    # dynamic INT8 of convolutions is slow in ONNX Runtime and the mixed search on a CNN takes minutes
    {"model": "zoo:efficientnet-lite0", "out": "runs/efficientnet-lite0", "limit": 64,
     "variants": ["fp32", "fp16", "int8-static"]},
    {"model": "zoo:minilm", "out": "runs/minilm", "seq": 32, "limit": 120,
     "variant_options": {"mixed": {"time_budget_s": 90}}},
]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("USE_TF", "0")
    from edgeship.cli.optimize_cmd import print_summary
    from edgeship.core.errors import EdgeshipError
    from edgeship.pipeline.optimize import optimize
    from edgeship.pipeline.recipe import OptimizeRecipe

    t0 = time.perf_counter()
    runs = []
    for fields in DEMO_MODELS:
        recipe = OptimizeRecipe.from_dict({**fields, "bench_min_time_s": 1.0})
        try:
            report = optimize(recipe)
        except EdgeshipError as exc:
            print(f"demo: {fields['model']}: {exc}", file=sys.stderr)
            return exc.exit_code
        print_summary(report)
        runs.append(Path(report["run_dir"]))
    try:
        from ship_demo import publish_and_update  # examples/ship_demo.py, beside this script
    except ImportError:
        publish_and_update = None
    if publish_and_update is not None:
        publish_and_update(runs, Path("runs/ship-demo"))
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s. Reports:")
    for run in runs:
        print(f"  {run}/report.html  ({run}/report.md, {run}/report.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
