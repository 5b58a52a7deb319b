"""``zoo:digits-cnn`` — a small CNN (``zoo.nets.DigitsCNN``) trained deterministically on scikit-learn's
digits training split, cached as safetensors in the user cache folder (``EDGESHIP_CACHE``, default
``~/.cache/edgeship``) under a name that hashes its training recipe.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from edgeship.sources.torch_source import TorchSource
from edgeship.zoo.base import ZOO, cache_dir, image_classifier

DIGITS_RECIPE_VERSION = 1  # bump when the training code changes in a way the recipe dict does not show
DIGITS_TRAINING = {"epochs": 30, "batch_size": 64, "lr": 0.01, "seed": 0}


def digits_recipe() -> dict[str, Any]:
    """Everything that determines the trained weights; its hash names the cached file."""
    import torch

    from edgeship.zoo.digits import DIGITS_SPLIT
    from edgeship.zoo.nets import DigitsCNN

    return {"version": DIGITS_RECIPE_VERSION, "arch": DigitsCNN.ARCH, "split": DIGITS_SPLIT,
            "input": "pixels/16", **DIGITS_TRAINING, "torch": torch.__version__.split("+")[0]}


def digits_weights_path() -> Path:
    key = hashlib.sha256(json.dumps(digits_recipe(), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "zoo" / f"digits-cnn-{key}.safetensors"


def _load_or_train_digits() -> tuple[Any, Path, bool]:
    """The trained DigitsCNN, its cache file and whether it was trained now (False: loaded)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    from edgeship.core.atomic import atomic_path
    from edgeship.zoo.digits import digits_arrays
    from edgeship.zoo.nets import DigitsCNN, train_digits_cnn

    path = digits_weights_path()
    if path.is_file():
        module = DigitsCNN()
        try:
            module.load_state_dict(load_file(str(path)))
            return module.eval(), path, False
        except (SafetensorError, RuntimeError, OSError) as exc:
            # A damaged cache is not the user's problem: retrain and replace it.
            print(f"edgeship: cached digits-cnn weights {path} are unreadable ({type(exc).__name__}); "
                  "retraining", file=sys.stderr)
    x_train, y_train, _, _ = digits_arrays()
    module = train_digits_cnn(x_train, y_train, **DIGITS_TRAINING)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata={"recipe": json.dumps(digits_recipe(), sort_keys=True)})
    except OSError as exc:
        # A read-only home still gets a working model; it is just retrained next time.
        print(f"edgeship: cannot cache digits-cnn weights in {path.parent} ({exc}); set EDGESHIP_CACHE "
              "to a writable folder", file=sys.stderr)
    return module, path, True


@ZOO.register("digits-cnn")
def digits_cnn() -> TorchSource:
    module, path, trained = _load_or_train_digits()
    return image_classifier("digits-cnn", module, (1, 8, 8), calib_data="data:digits-calib",
                            eval_data="data:digits-test", gate=("accuracy_drop<=1.0",),
                            labels=[str(i) for i in range(10)], extra={"weights": str(path), "trained_now": trained})
