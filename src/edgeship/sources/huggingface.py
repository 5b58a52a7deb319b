"""Hugging Face model folders of every task Optimum can export, loaded offline.

A folder saved with ``save_pretrained`` (``config.json`` and weights) becomes a :class:`TorchSource`
through Hugging Face Optimum's task manager and ONNX export configs — the per-architecture specs of
which inputs a model takes, which outputs matter for a task, their dynamic axes and dummy inputs:

1. the task: ``task`` when given (an Optimum task name or synonym, ``--task``), else inferred from
   ``config.json``'s architecture (``MobileNetV2ForImageClassification`` → image-classification);
2. the model class Optimum maps the task to, loaded from the folder (no network);
3. the export config of (architecture, task): input and output names, dummy inputs to trace with;
   for encoder-decoder tasks (text2text-generation, speech seq2seq) the encoder is the source;
4. a module that takes those inputs positionally and returns those outputs, with a dynamic batch
   (and a dynamic sequence for token inputs); other dims stay at the dummy's size, which the
   architecture fixes (image size, audio frames);
5. defaults per task and input modality (:data:`TASKS`, :data:`MODALITIES`): how outputs are judged,
   the gate for lossy variants, and the data sets to evaluate and calibrate on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.core.logs import TORCHAO_NOISE, quiet_loggers, third_party_output
from edgeship.core.registry import require
from edgeship.sources.torch_source import Task, TorchSource, eager_run

# Example text for folders that have a tokenizer; parity later tokenises each alone.
HF_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "ok",
    "Edge devices run small models on limited memory and power budgets.",
    "How long does the battery last when the network runs every second?",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "sentencepiece.bpe.model", "spiece.model")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Optimum's axis names → edgeship's (the names the rest of edgeship and its reports use)
AXIS_NAMES = {"batch_size": "batch", "sequence_length": "sequence"}


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """What edgeship makes of an Optimum task: ``kind`` says how outputs are judged
    (``classification``: top-1 agreement of [batch, classes] scores), ``gate`` the default gate
    of lossy variants (empty: the kind's default in check/tolerances.yaml)."""

    kind: Task = "other"
    gate: tuple[str, ...] = ()


# Tasks whose main output is [batch, classes] scores are classifiers; the others (hidden states,
# per-token or per-pixel logits, boxes) are compared tensor to tensor.
TASKS: dict[str, TaskDefaults] = {
    "image-classification": TaskDefaults("classification"),
    "audio-classification": TaskDefaults("classification"),
    "text-classification": TaskDefaults("classification"),
    "multiple-choice": TaskDefaults("classification"),
    "feature-extraction": TaskDefaults("other"),
    "token-classification": TaskDefaults("other"),
    "question-answering": TaskDefaults("other"),
    "fill-mask": TaskDefaults("other"),
    "object-detection": TaskDefaults("other"),
    "semantic-segmentation": TaskDefaults("other"),
    "image-segmentation": TaskDefaults("other"),
    "depth-estimation": TaskDefaults("other"),
    "audio-frame-classification": TaskDefaults("other"),
    "audio-xvector": TaskDefaults("other"),
    "automatic-speech-recognition": TaskDefaults("other"),
    "text2text-generation": TaskDefaults("other"),
    "text-generation": TaskDefaults("other"),
}


@dataclasses.dataclass(frozen=True)
class ModalityDefaults:
    """Default data for a model whose first input is of this kind (``needs_tokenizer``: text data
    sets need the folder's tokenizer, since a random one would index outside the vocabulary)."""

    eval_data: str
    calib_data: str
    needs_tokenizer: bool = False


MODALITIES: dict[str, ModalityDefaults] = {
    "pixel_values": ModalityDefaults("data:images:test", "data:images:calib"),
    "input_ids": ModalityDefaults("data:sentences:test", "data:sentences:calib", needs_tokenizer=True),
    "input_values": ModalityDefaults("data:synthetic", "data:synthetic"),
    "input_features": ModalityDefaults("data:synthetic", "data:synthetic"),
}


def is_hf_folder(spec: str) -> bool:
    p = Path(spec)
    return p.is_dir() and (p / "config.json").is_file()


def supported_tasks() -> list[str]:
    """The Optimum tasks edgeship knows defaults for (``--task`` takes any Optimum task or synonym)."""
    return sorted(TASKS)


def load_hf_folder(spec: str, task: str | None = None) -> TorchSource:
    """A Hugging Face folder as a TorchSource (see the module docstring); everything offline."""
    os.environ.setdefault("USE_TF", "0")  # transformers would otherwise import TensorFlow
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    folder = Path(spec)
    with quiet_loggers(*TORCHAO_NOISE, "transformers", "optimum"), third_party_output():
        transformers = require("transformers", "core", "transformers (for Hugging Face folders)")
        # importing the export configs registers them with the task manager
        require("optimum.exporters.onnx.model_configs", "bench", "optimum (for Hugging Face folders)")
        from optimum.exporters.tasks import TasksManager

        config = _config(transformers, folder, spec)
        task_name = _task(TasksManager, transformers, config, task, spec)
        _check_supported(TasksManager, config, task_name, spec)
        model = _load_model(TasksManager, transformers, config, folder, task_name, spec)
        onnx_config = _export_config(TasksManager, model, task_name, spec)
    encoder = bool(getattr(model.config, "is_encoder_decoder", False)) and hasattr(onnx_config, "with_behavior")
    if encoder:  # the encoder of a seq2seq model: what runs once per input on the device
        onnx_config = onnx_config.with_behavior("encoder")
        module = model.get_encoder()
    else:
        module = model
    module.eval()
    input_names = [n for n in onnx_config.inputs if not n.startswith("past_key_values")]
    tokenizer = _tokenizer(transformers, folder) if set(input_names) & {"input_ids"} else None
    positions = getattr(model.config, "max_position_embeddings", None)
    if tokenizer is not None and isinstance(positions, int) and tokenizer.model_max_length > positions:
        tokenizer.model_max_length = positions  # text data is truncated to what the model can take
    example, parity_feeds = _example_inputs(onnx_config, input_names, tokenizer, spec)
    input_names = list(example)
    wrapper = task_module(module, input_names)
    output_names = _present_outputs(wrapper, example, list(onnx_config.outputs), spec)
    wrapper.output_names = output_names
    dynamic = {n: _axes(onnx_config.inputs[n], n) for n in input_names}
    defaults = TASKS.get(task_name, TaskDefaults())
    modality = MODALITIES.get(input_names[0]) if input_names else None
    eval_data = calib_data = None
    if modality is not None and (tokenizer is not None or not modality.needs_tokenizer):
        eval_data, calib_data = modality.eval_data, modality.calib_data
    part = "encoder of " if encoder else ""
    return TorchSource(name=spec, module=wrapper, example_inputs=example, output_names=output_names,
                       dynamic_axes={n: a for n, a in dynamic.items() if a}, task=defaults.kind,
                       eval_data=eval_data, calib_data=calib_data, gate=defaults.gate,
                       labels=_labels(model.config) if defaults.kind == "classification" else None,
                       extra={"tokenizer": tokenizer, "parity_feeds": parity_feeds, "hf_task": task_name,
                              "dim_max": _dim_max(model.config, dynamic),
                              "hf_model": f"{part}{type(model).__name__}",
                              "hf_export_config": type(onnx_config).__name__})


def _config(transformers: Any, folder: Path, spec: str) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # a config transformers cannot read: the user's file to fix
        raise BadInput(f"{spec!r}: transformers cannot read its config.json ({type(exc).__name__}: "
                       f"{_first_line(exc)}); check the file") from None


def _task(manager: Any, transformers: Any, config: Any, task: str | None, spec: str) -> str:
    """The user's task (an Optimum name or synonym), else the one the architecture's class says."""
    if task:
        name = manager.map_from_synonym(task)
        known = manager.get_all_tasks()
        if name not in known:
            raise BadInput(f"--task {task!r} is not a task Optimum knows; choose one of {', '.join(sorted(known))}")
        return name
    for arch in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, arch, None)
        if cls is None:
            continue
        try:
            return str(manager.infer_task_from_model(cls))
        except (ValueError, KeyError):
            continue
    return "feature-extraction"  # a bare *Model (BertModel, ViTModel): its hidden states


def _check_supported(manager: Any, config: Any, task: str, spec: str) -> None:
    """Refuse a task Optimum cannot export for this architecture, naming the ones it can."""
    try:
        tasks = manager.get_supported_tasks_for_model_type(config.model_type, "onnx", library_name="transformers")
    except (KeyError, ValueError):
        raise BadInput(f"{spec!r}: Optimum cannot export {config.model_type} models to ONNX; give file.py:factory "
                       "that builds the network") from None
    if task not in tasks and not set(manager.synonyms_for_task(task)) & set(tasks):
        raise BadInput(f"{spec!r}: Optimum has no ONNX export config for {config.model_type} / {task}; it exports "
                       f"{config.model_type} for {', '.join(sorted(tasks))} (choose one with --task)")


def _load_model(manager: Any, transformers: Any, config: Any, folder: Path, task: str, spec: str) -> Any:
    model_class = None
    archs = getattr(config, "architectures", None) or ()
    with contextlib.suppress(KeyError, ValueError):
        model_class = manager.get_model_class_for_task(task, framework="pt", model_type=config.model_type,
                                                       library="transformers")
    # the architecture's own class when it does this task (AutoModelForSpeechSeq2Seq vs ForCTC, ...)
    for arch in archs:
        cls = getattr(transformers, arch, None)
        if cls is not None and _class_task(manager, cls) == task:
            model_class = cls
            break
    if model_class is None:
        raise BadInput(f"{spec!r}: no transformers class does task {task!r} for {config.model_type}; choose "
                       "another --task")
    for kwargs in ({"attn_implementation": "eager"}, {}):  # eager attention exports everywhere; SDPA less so
        try:
            return model_class.from_pretrained(str(folder), local_files_only=True, **kwargs)
        except (TypeError, ValueError) as exc:
            last: Exception = exc
            continue
        except Exception as exc:
            raise BadInput(f"{spec!r}: transformers cannot load this folder as {model_class.__name__} "
                           f"({type(exc).__name__}: {_first_line(exc)}); check config.json and the weights "
                           "file") from None
    raise BadInput(f"{spec!r}: transformers cannot load this folder as {model_class.__name__} "
                   f"({type(last).__name__}: {_first_line(last)}); check config.json and the weights file")


def _class_task(manager: Any, cls: type) -> str | None:
    try:
        return str(manager.infer_task_from_model(cls))
    except (ValueError, KeyError):
        return None


def _export_config(manager: Any, model: Any, task: str, spec: str) -> Any:
    try:
        ctor = manager.get_exporter_config_constructor("onnx", model=model, task=task, library_name="transformers")
    except (KeyError, ValueError) as exc:
        raise BadInput(f"{spec!r}: Optimum has no ONNX export config for {model.config.model_type} / {task} "
                       f"({_first_line(exc)}); choose a supported --task, or give file.py:factory") from None
    return ctor(model.config, task=task)


def _tokenizer(transformers: Any, folder: Path) -> Any:
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return None
    try:
        with third_party_output():
            return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # a broken tokenizer only costs us realistic example text
        return None


def _example_inputs(onnx_config: Any, names: list[str], tokenizer: Any,
                    spec: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Example inputs (batch 1): the tokenizer's encoding of a sentence for token inputs, else
    Optimum's dummy inputs; and, for text, every example sentence alone (parity checks lengths)."""
    import numpy as np
    import torch

    try:
        dummy = onnx_config.generate_dummy_inputs(framework="pt", batch_size=1, **_dummy_shapes(onnx_config._config))
    except Exception as exc:  # Optimum's generators need config fields some folders lack
        raise BadInput(f"{spec!r}: Optimum cannot make example inputs ({type(exc).__name__}: {_first_line(exc)}); "
                       "give file.py:factory with example inputs") from None
    example = {n: dummy[n] for n in names if n in dummy}
    parity: list[dict[str, Any]] = []
    if tokenizer is not None and set(example) <= set(TOKEN_INPUTS):
        for text in HF_SENTENCES:
            enc = tokenizer([text], return_tensors="np")
            if all(n in enc for n in example):
                parity.append({n: np.asarray(enc[n]).astype(np.int64) for n in example})
        if parity:
            example = {n: torch.from_numpy(parity[0][n]) for n in example}
    elif "input_ids" in example:  # no tokenizer: ids inside the vocabulary, past the special tokens
        vocab = int(getattr(onnx_config._config, "vocab_size", 100) or 100)
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(1, max(2, min(vocab, 1000)), tuple(example["input_ids"].shape), generator=gen)
        example["input_ids"] = ids
        for n in ("attention_mask",):
            if n in example:
                example[n] = torch.ones_like(ids)
        if "token_type_ids" in example:
            example["token_type_ids"] = torch.zeros_like(ids)
    return example, parity


def _dummy_shapes(config: Any) -> dict[str, int]:
    """Dummy-input sizes the architecture fixes, where Optimum's defaults assume a full-size model: a
    speech encoder with learned positions takes exactly twice its positions in mel frames."""
    shapes: dict[str, int] = {}
    if getattr(config, "num_mel_bins", None) and getattr(config, "max_source_positions", None):
        shapes["nb_max_frames"] = 2 * int(config.max_source_positions)
        shapes["feature_size"] = int(config.num_mel_bins)
    return shapes


def _axes(axes: dict[int, str], name: str) -> dict[int, str]:
    """The dims kept dynamic: the batch, and the sequence of token inputs; the others are fixed by the
    architecture (image size, audio frames) and stay at the example's size."""
    kept = {}
    for axis, dim in axes.items():
        if axis == 0:
            kept[0] = AXIS_NAMES.get(dim, dim)
        elif axis == 1 and name in TOKEN_INPUTS:  # "sequence_length", "encoder_sequence_length", ...
            kept[1] = "sequence"
    return kept


def _dim_max(config: Any, dynamic: dict[str, dict[int, str]]) -> dict[str, int]:
    """Upper bounds of dynamic dims the architecture sets: a sequence no longer than its learned
    positions (``max_position_embeddings``); exporters that bound dims (ExecuTorch) need them."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions and any("sequence" in axes.values() for axes in dynamic.values()):
        return {"sequence": int(positions)}
    return {}


def _labels(config: Any) -> list[str] | None:
    id2label = getattr(config, "id2label", None) or {}
    if not id2label:
        return None
    return [str(id2label[i]) for i in sorted(id2label)]


def task_module(model: Any, input_names: list[str]) -> Any:
    """A module calling a transformers model with named inputs, taken positionally in ``input_names``
    order, returning the task's outputs (``output_names``, set once known) as a tuple.

    Its forward's signature names the inputs, so exporters see real parameter names."""
    import torch

    class TaskModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.input_names = list(input_names)
            self.output_names: list[str] = []

        def forward(self, *args: Any) -> Any:
            out = self.model(**dict(zip(self.input_names, args, strict=True)), return_dict=True)
            if not self.output_names:
                return out
            return tuple(out[n] for n in self.output_names)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in input_names]
    TaskModule.forward.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return TaskModule()


def _present_outputs(module: Any, example: dict[str, Any], wanted: list[str], spec: str) -> list[str]:
    """The export config's outputs that the model returns (one eager run)."""
    import torch

    out = eager_run(module, example, repr(spec), "check config.json")
    present = [n for n in wanted if n in out and isinstance(out[n], torch.Tensor)]
    if not present:
        raise BadInput(f"{spec!r}: the model returns none of the task's outputs ({', '.join(wanted)}); choose "
                       "another --task")
    return present


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
