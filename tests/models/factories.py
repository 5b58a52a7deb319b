"""Small user-source files for the export tests, written into tmp folders (built in code, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

FACTORIES = '''
import torch
from torch import nn


class Branchy(nn.Module):
    """A data-dependent Python branch: torch.export refuses it, the legacy tracer bakes one side in."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x * -1


def branchy():
    return Branchy(), (torch.ones(1, 3),)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return torch.relu(self.fc(x)), torch.relu(x)


def clash():
    # "relu" is also the name the dynamo exporter gives the first Relu node's output
    torch.manual_seed(0)
    return {"module": TwoHeads().eval(), "example_inputs": {"x": torch.randn(2, 3)},
            "output_names": ["relu", "relu"], "dynamic_axes": {"x": [0]}}


class FullyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image, scale):
        return self.conv(image).mean(dim=(2, 3)) * scale


def fully_conv():
    torch.manual_seed(0)
    return FullyConv().eval(), (torch.randn(1, 3, 8, 8), torch.ones(1, 1))


def two_outputs():
    return TwoHeads().eval(), (torch.randn(2, 3),)


def named():
    return {"module": TwoHeads().eval(), "example_inputs": [torch.randn(2, 3)], "input_names": ["features"],
            "output_names": ["a", "b"], "task": "classification"}


def bad_key():
    return {"module": TwoHeads(), "example_inputs": (torch.randn(1, 3),), "outputs": ["a"]}


def not_a_module():
    return 42, (torch.randn(1, 3),)


def raises():
    raise RuntimeError("weights file missing")
'''


def factories_file(folder: Path) -> Path:
    path = folder / "factories.py"
    path.write_text(FACTORIES)
    return path


def tiny_hf_folder(folder: Path) -> Path:
    """A 1-layer BERT (hidden 16) with a word-piece tokenizer, saved like a Hugging Face model folder."""
    import os

    os.environ.setdefault("USE_TF", "0")
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "jumps", "over", "lazy",
             "dog", "ok", "edge", "devices", "run", "small", "models", "on", ".", ",", "?", "how", "long", "does"]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(str(folder))
    return folder
