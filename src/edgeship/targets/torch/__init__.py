"""PyTorch eager: the FP32 reference a golden check starts from, and a baseline for benchmarks."""

from __future__ import annotations

from typing import Any, ClassVar

from edgeship.core.artifact import Model
from edgeship.targets.base import Feeds, Runner, Target, register_target


class TorchRunner(Runner):
    """Runs a TorchSource eagerly. Its ``model`` is a handle whose path is the source spec."""

    runtime: ClassVar[str] = "pytorch"

    def __init__(self, source: Any, threads: int | None = None) -> None:
        from pathlib import Path

        super().__init__(Model(Path(source.name), "torch", source.io))
        self.source = source
        self.threads = threads

    def _build(self) -> Any:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        return self.source

    def _infer(self, session: Any, feeds: Feeds) -> Feeds:
        return session.forward_numpy(feeds)


@register_target
class TorchTarget(Target):
    name: ClassVar[str] = "torch"
    formats: ClassVar[tuple[str, ...]] = ("torch",)
    output_format: ClassVar[str] = "torch"
    modules: ClassVar[tuple[str, ...]] = ("torch",)
    extra: ClassVar[str] = "core"
    report_name: ClassVar[str] = "pytorch-cpu"
    runs_format: ClassVar[str] = "torch"

    def runner(self, model: Any, **options: Any) -> Runner:
        return TorchRunner(model, **options)
