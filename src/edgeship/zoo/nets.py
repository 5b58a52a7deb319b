"""The torch modules behind the zoo entries. Importing this module imports torch: import it lazily.

Classes live at module level (not inside factories) so modules can be deep-copied, pickled to worker
processes and exported by ``torch.export`` the same way as any user model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SentenceEmbedder(nn.Module):
    """A Hugging Face encoder followed by mean pooling over real tokens and L2 normalisation.

    This is what SentenceTransformer's all-MiniLM-L6-v2 pipeline (Transformer → Pooling(mean) →
    Normalize) computes, as one module with tensor inputs only, so it exports to ONNX in one graph.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        # return_dict=False: a plain tuple traces and exports more reliably than a ModelOutput.
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids, return_dict=False)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)  # the same floor SentenceTransformer's Pooling uses
        return nn.functional.normalize(summed / counts, p=2.0, dim=1)


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions and two linear layers for 8×8 grey digits (13,178 parameters)."""

    # Part of the training recipe's cache key: change it whenever the layers change.
    ARCH = "conv(1,16,3,p1)-relu-conv(16,32,3,p1)-relu-maxpool2-fc(512,16)-relu-fc(16,10)"

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def train_digits_cnn(x_train: Any, y_train: Any, epochs: int, batch_size: int, lr: float, seed: int) -> DigitsCNN:
    """Train a DigitsCNN deterministically: seeded init and shuffling, one thread, global RNG untouched."""
    threads = torch.get_num_threads()
    # One thread makes the float reductions run in one order, so the weights are bit-identical
    # from run to run and machine to machine with the same torch build.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitsCNN()
            gen = torch.Generator().manual_seed(seed)
            # torch.tensor copies: the cached arrays are read-only and must stay untouched.
            xs = torch.tensor(x_train, dtype=torch.float32)
            ys = torch.tensor(y_train, dtype=torch.int64)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            model.train()
            for _ in range(epochs):
                order = torch.randperm(len(xs), generator=gen)
                for start in range(0, len(xs), batch_size):
                    idx = order[start:start + batch_size]
                    opt.zero_grad()
                    loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
                    loss.backward()
                    opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
