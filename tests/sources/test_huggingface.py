"""Hugging Face folders of any task through Optimum's task manager and export configs, offline."""

from pathlib import Path

import numpy as np
import pytest

from edgeship.core.errors import BadInput
from edgeship.sources.loaders import load_source
from models import corpus

pytest.importorskip("optimum.exporters.onnx")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    made = {}
    for build in (corpus.hf_vit, corpus.hf_bert_text_classification, corpus.hf_wav2vec2_audio_classification,
                  corpus.hf_whisper_encoder, corpus.hf_t5_encoder, corpus.hf_yolos):
        made[build.__name__] = Path(build(root / build.__name__)[0])
    return made


@pytest.mark.parametrize("name, task, kind, inputs, outputs, data", [
    ("hf_vit", "image-classification", "classification", {"pixel_values": (1, 3, 32, 32)}, ["logits"],
     "data:images:test"),
    ("hf_bert_text_classification", "text-classification", "classification",
     {"input_ids": None, "attention_mask": None, "token_type_ids": None}, ["logits"], "data:sentences:test"),
    ("hf_wav2vec2_audio_classification", "audio-classification", "classification", {"input_values": (1, 16000)},
     ["logits"], "data:synthetic"),
    ("hf_whisper_encoder", "automatic-speech-recognition", "other", {"input_features": (1, 16, 64)},
     ["last_hidden_state"], "data:synthetic"),
    ("hf_t5_encoder", "text2text-generation", "other", {"input_ids": None, "attention_mask": None},
     ["last_hidden_state"], "data:sentences:test"),
    ("hf_yolos", "object-detection", "other", {"pixel_values": (1, 3, 64, 64)}, ["logits", "pred_boxes"],
     "data:images:test"),
])
def test_the_task_comes_from_the_config_and_optimum_gives_inputs_outputs_and_defaults(
        folders, name, task, kind, inputs, outputs, data):
    src = load_source(str(folders[name]))
    assert src.extra["hf_task"] == task and src.task == kind
    assert list(src.example_inputs) == list(inputs)
    for n, shape in inputs.items():
        if shape is not None:
            assert tuple(src.example_inputs[n].shape) == shape
    assert src.output_names == outputs
    assert src.eval_data == data and src.calib_data == data.replace(":test", ":calib")
    assert all(axes.get(0) == "batch" for axes in src.dynamic_axes.values())
    out = src.forward_numpy({k: v.numpy() for k, v in src.example_inputs.items()})
    assert list(out) == outputs and all(np.isfinite(v).all() for v in out.values())


def test_seq2seq_folders_give_their_encoder_with_a_dynamic_sequence(folders):
    src = load_source(str(folders["hf_t5_encoder"]))
    assert src.extra["hf_model"] == "encoder of T5ForConditionalGeneration"
    assert src.dynamic_axes == {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    assert src.tokenizer is not None and len({f["input_ids"].shape[1] for f in src.extra["parity_feeds"]}) > 1


def test_task_override_and_unknown_tasks(folders):
    src = load_source(str(folders["hf_vit"]), task="feature-extraction")
    assert src.extra["hf_task"] == "feature-extraction" and src.extra["hf_model"] == "ViTModel"
    assert src.output_names == ["last_hidden_state"] and src.task == "other"
    synonym = load_source(str(folders["hf_bert_text_classification"]), task="sequence-classification")
    assert synonym.extra["hf_task"] == "text-classification"
    with pytest.raises(BadInput, match=r"--task 'cooking' is not a task Optimum knows; choose one of .*image-classif"):
        load_source(str(folders["hf_vit"]), task="cooking")
    with pytest.raises(BadInput, match="Optimum has no ONNX export config for vit / text-classification"):
        load_source(str(folders["hf_vit"]), task="text-classification")


def test_a_broken_config_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(BadInput, match=r"transformers cannot read its config\.json") as exc:
        load_source(str(tmp_path))
    assert "\n" not in str(exc.value)
