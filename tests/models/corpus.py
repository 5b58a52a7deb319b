"""A corpus of models no one on the edgeship team wrote, made here from code, for the "any model in" tests.

- Hugging Face architectures of different tasks, random-initialised from tiny configs and saved with
  ``save_pretrained`` (vision, detection, segmentation, audio, speech encoder, text, seq2seq encoder);
- PyTorch code shipped in another project's wheel (ExecuTorch's examples: MLPerf Tiny's keyword
  spotter, the Silero voice-activity detector with its LSTM state);
- ONNX files shipped in another project's wheel (the ONNX package's Caffe2-exported model-zoo
  graphs, opset 9, initializers listed as inputs), their constant weights replaced by seeded random
  ones so their outputs depend on their inputs.

Each entry builds its model into a folder and returns the ``--model`` spec and the extra optimize
options it needs (``data``, ``shapes``). Everything is offline.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("USE_TF", "0")

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "jumps", "over", "lazy",
         "dog", "ok", "edge", "devices", "run", "small", "models", "on", ".", ",", "?", "how", "long", "does",
         "a", "an", "is", "of", "to", "and", "in", "it", "for", "with", "as", "be", "by", "this", "that", "are"]


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    origin: str  # where the model's code or file comes from
    kind: str  # "huggingface", "torch" or "onnx"
    build: Callable[[Path], tuple[str, dict[str, Any]]]  # folder -> (model spec, optimize options)


def _save_hf(folder: Path, model: Any, tokenizer: bool = False) -> str:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer:
        from transformers import BertTokenizerFast

        vocab = folder / "vocab.txt"
        vocab.write_text("\n".join(WORDS) + "\n")
        BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(folder))
    with torch.no_grad():
        model.eval().save_pretrained(str(folder))
    return str(folder)


def _seeded() -> None:
    import torch

    torch.manual_seed(0)


def hf_mobilenet_v2(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    _seeded()
    cfg = MobileNetV2Config(image_size=64, depth_multiplier=0.35, num_labels=10)
    return _save_hf(folder, MobileNetV2ForImageClassification(cfg)), {}


def hf_vit(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import ViTConfig, ViTForImageClassification

    _seeded()
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, num_labels=5)
    return _save_hf(folder, ViTForImageClassification(cfg)), {}


def hf_yolos(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import YolosConfig, YolosForObjectDetection

    _seeded()
    cfg = YolosConfig(image_size=[64, 64], patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, num_detection_tokens=5, num_labels=3)
    return _save_hf(folder, YolosForObjectDetection(cfg)), {}


def hf_segformer(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    _seeded()
    cfg = SegformerConfig(image_size=64, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                          decoder_hidden_size=16, num_labels=4)
    return _save_hf(folder, SegformerForSemanticSegmentation(cfg)), {}


def hf_wav2vec2_audio_classification(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    _seeded()
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, classifier_proj_size=8,
                         num_labels=4, do_stable_layer_norm=True, feat_extract_norm="layer")
    return _save_hf(folder, Wav2Vec2ForSequenceClassification(cfg)), {}


def hf_whisper_encoder(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    _seeded()
    cfg = WhisperConfig(vocab_size=64, num_mel_bins=16, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_source_positions=32, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, decoder_start_token_id=1, suppress_tokens=[], begin_suppress_tokens=[])
    return _save_hf(folder, WhisperForConditionalGeneration(cfg)), {}


def hf_bert_text_classification(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import BertConfig, BertForSequenceClassification

    _seeded()
    cfg = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128, num_labels=3)
    return _save_hf(folder, BertForSequenceClassification(cfg), tokenizer=True), {}


def hf_distilbert_token_classification(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    _seeded()
    cfg = DistilBertConfig(vocab_size=len(WORDS), dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                           max_position_embeddings=128, num_labels=5)
    return _save_hf(folder, DistilBertForTokenClassification(cfg), tokenizer=True), {}


def hf_t5_encoder(folder: Path) -> tuple[str, dict[str, Any]]:
    from transformers import T5Config, T5ForConditionalGeneration

    _seeded()
    cfg = T5Config(vocab_size=len(WORDS), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                   num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=3)
    return _save_hf(folder, T5ForConditionalGeneration(cfg), tokenizer=True), {}


# -- PyTorch code from another project's wheel --------------------------------------------------------
DS_CNN_FACTORY = '''
import torch
from executorch.examples.models.mlperf_tiny.ds_cnn import DSCNNKWS


def build():
    """MLPerf Tiny's keyword-spotting DS-CNN (ExecuTorch's examples), random weights, one MFCC frame set."""
    torch.manual_seed(0)
    model = DSCNNKWS().eval()
    with torch.no_grad():  # fresh BatchNorm statistics would make every layer an identity: give them some
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return {"module": model, "example_inputs": (torch.randn(1, 1, 49, 10),), "input_names": ["mfcc"],
            "output_names": ["logits"], "dynamic_axes": {"mfcc": {0: "batch"}}, "task": "classification"}
'''

SILERO_FACTORY = '''
import torch
from executorch.examples.models.silero_vad.export_silero_vad import INPUT_SIZE, HIDDEN_DIM, SileroVAD16k


class WithSampleRate(torch.nn.Module):
    """The Silero VAD (ExecuTorch's eager reimplementation) with the int64 scalar sample-rate input of
    the official ONNX file: audio [1, 576], LSTM state [2, 1, 128], sr []."""

    def __init__(self):
        super().__init__()
        self.vad = SileroVAD16k()

    def forward(self, audio, state, sr):
        prob, new_state = self.vad(audio * (sr.float() / 16000.0), state)
        return prob, new_state


def build():
    torch.manual_seed(0)
    return {"module": WithSampleRate().eval(),
            "example_inputs": (torch.randn(1, INPUT_SIZE), torch.zeros(2, 1, HIDDEN_DIM), torch.tensor(16000)),
            "input_names": ["audio", "state", "sr"], "output_names": ["prob", "new_state"]}
'''


def executorch_ds_cnn(folder: Path) -> tuple[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ds_cnn.py").write_text(DS_CNN_FACTORY)
    return f"{folder / 'ds_cnn.py'}:build", {"data": "data:synthetic"}


def executorch_silero_vad(folder: Path) -> tuple[str, dict[str, Any]]:
    """The stateful model: its data is a folder of calls (one .npz each) with the state carried."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "silero.py").write_text(SILERO_FACTORY)
    calls = silero_calls(folder / "calls")
    return f"{folder / 'silero.py'}:build", {"data": str(calls)}


def silero_calls(folder: Path, n: int = 6) -> Path:
    """A stream of ``n`` audio windows as one feed set per call, the LSTM state carried from each
    call's ``new_state`` output to the next call's ``state`` input (``carry.json``)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(576 * n, dtype=np.float32) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    for i in range(n):
        np.savez(folder / f"call_{i:03d}.npz", audio=audio[None, i * 576:(i + 1) * 576],
                 state=np.zeros((2, 1, 128), np.float32), sr=np.array(16000, np.int64))
    (folder / "carry.json").write_text(json.dumps({"state": "new_state"}))
    return folder


# -- ONNX files from another project's wheel ------------------------------------------------------------
def onnx_zoo_file(name: str) -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def with_random_weights(src: Path, out: Path, seed: int = 0) -> Path:
    """The graph of ``src`` with each ConstantOfShape-filled weight replaced by a seeded random
    initializer of the same shape (He-scaled), so outputs depend on the input. Everything else — the
    Caffe2 exporter's ops, opset, IR version, initializers listed as graph inputs — stays."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    graph = model.graph
    consts = {}
    for node in list(graph.node):
        if node.op_type != "ConstantOfShape":
            continue
        shape_name = node.input[0]
        shape = next((numpy_helper.to_array(i) for i in graph.initializer if i.name == shape_name), None)
        if shape is None:
            continue
        shape = tuple(int(d) for d in shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if len(shape) == 1:  # biases, BatchNorm scales/shifts/means: near their neutral values
            base = 1.0 if any(k in node.output[0] for k in ("scale", "_s_", "var", "_riv")) else 0.0
            value = base + 0.05 * rng.standard_normal(shape)
            if "var" in node.output[0] or "_riv" in node.output[0]:
                value = np.abs(value) + 0.5
        else:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, fan_in))
        consts[node.output[0]] = numpy_helper.from_array(value.astype(np.float32), node.output[0])
        graph.node.remove(node)
    for name, tensor in consts.items():
        graph.initializer.append(tensor)
        if not any(i.name == name for i in graph.input):  # IR 3: every initializer is also an input
            graph.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(tensor.dims)))
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def onnx_squeezenet(folder: Path) -> tuple[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    return str(with_random_weights(onnx_zoo_file("squeezenet"), folder / "squeezenet.onnx")), \
        {"data": "data:images:test", "calib": "data:images:calib"}


def onnx_shufflenet(folder: Path) -> tuple[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    return str(with_random_weights(onnx_zoo_file("shufflenet"), folder / "shufflenet.onnx", seed=1)), \
        {"data": "data:images:test", "calib": "data:images:calib"}


CORPUS: tuple[Entry, ...] = (
    Entry("hf-mobilenet-v2", "transformers MobileNetV2ForImageClassification", "huggingface", hf_mobilenet_v2),
    Entry("hf-vit", "transformers ViTForImageClassification", "huggingface", hf_vit),
    Entry("hf-yolos", "transformers YolosForObjectDetection", "huggingface", hf_yolos),
    Entry("hf-segformer", "transformers SegformerForSemanticSegmentation", "huggingface", hf_segformer),
    Entry("hf-wav2vec2", "transformers Wav2Vec2ForSequenceClassification", "huggingface",
          hf_wav2vec2_audio_classification),
    Entry("hf-whisper", "transformers WhisperForConditionalGeneration (encoder)", "huggingface", hf_whisper_encoder),
    Entry("hf-bert", "transformers BertForSequenceClassification", "huggingface", hf_bert_text_classification),
    Entry("hf-distilbert", "transformers DistilBertForTokenClassification", "huggingface",
          hf_distilbert_token_classification),
    Entry("hf-t5", "transformers T5ForConditionalGeneration (encoder)", "huggingface", hf_t5_encoder),
    Entry("et-ds-cnn", "executorch examples mlperf_tiny DSCNNKWS", "torch", executorch_ds_cnn),
    Entry("et-silero-vad", "executorch examples silero_vad SileroVAD16k", "torch", executorch_silero_vad),
    Entry("onnx-squeezenet", "onnx backend test data light_squeezenet (Caffe2)", "onnx", onnx_squeezenet),
    Entry("onnx-shufflenet", "onnx backend test data light_shufflenet (Caffe2)", "onnx", onnx_shufflenet),
)
