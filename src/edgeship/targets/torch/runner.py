"""The PyTorch eager runner: a TorchSource's module run on numpy feeds."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgeship.core.artifact import Model
from edgeship.sources.torch_source import TorchSource
from edgeship.targets.base import Feeds, Runner


class TorchRunner(Runner):
    """Runs a TorchSource eagerly. Its ``model`` is a handle whose path is the source spec."""

    runtime: ClassVar[str] = "pytorch"

    def __init__(self, source: TorchSource, threads: int | None = None) -> None:
        super().__init__(Model(Path(source.name), "torch", source.io), threads)
        self.source = source

    def _build(self) -> TorchSource:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        return self.source

    def _infer(self, session: TorchSource, feeds: Feeds) -> Feeds:
        return session.forward_numpy(feeds)
