"""Hidden-state matching for ``layers=`` students: each kept block learns the output of the teacher
block it stands for, on top of the teacher's final outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeship.compress.distill.students import repeated_blocks


class HiddenStateMatch:
    """For a ``layers=`` student: student block j learns the output of the teacher block it replaces
    (the last teacher block before the next kept one), as in DistilBERT/TinyBERT layer mapping.

    Forward hooks capture each block's output; the loss is the MSE normalised by the teacher state's
    mean square, averaged over blocks, so it is scale-free."""

    def __init__(self, teacher: Any, student: Any, kept: list[int]) -> None:
        _, t_blocks = repeated_blocks(teacher)
        _, s_blocks = repeated_blocks(student)
        ends = [nxt - 1 for nxt in kept[1:]] + [len(t_blocks) - 1]
        self.pairs = list(zip(range(len(s_blocks)), ends, strict=True))
        self.t_out: dict[int, Any] = {}
        self.s_out: dict[int, Any] = {}
        self.handles = [t_blocks[t].register_forward_hook(self._keep(self.t_out, t)) for _, t in self.pairs]
        self.handles += [s_blocks[s].register_forward_hook(self._keep(self.s_out, s)) for s, _ in self.pairs]

    @staticmethod
    def _keep(store: dict[int, Any], key: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            store[key] = output[0] if isinstance(output, tuple | list) else output

        return hook

    def loss_fn(self, weight: float) -> Callable[[], Any]:
        def loss() -> Any:
            total = 0.0
            for s, t in self.pairs:
                ref = self.t_out[t].detach()
                total = total + ((self.s_out[s] - ref) ** 2).mean() / (ref.pow(2).mean() + 1e-6)
            return weight * total / len(self.pairs)

        return loss

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
