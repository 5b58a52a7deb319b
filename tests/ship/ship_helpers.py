"""Helpers the ship tests share, importable by a name of their own (``from ship_helpers import
publish``): a conftest is imported as ``conftest``, which another test folder's conftest shadows
when pytest is given several folders. ``conftest.py`` builds its fixtures from these."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgeship.ship.agent import AgentConfig
from edgeship.ship.publish import publish_model
from edgeship.ship.repository import ShipRepository


@dataclasses.dataclass(frozen=True)
class Release:
    model: Path
    golden: Path
    sha256: str


def golden_for(model: Path, out: Path, reference: Path | None = None, n: int = 4) -> Path:
    """Golden inputs and the outputs of ``reference`` (default: the model itself) run in ORT."""
    from edgeship.core.golden import save_golden
    from edgeship.targets.onnxruntime.runner import OrtRunner

    rng = np.random.default_rng(42)
    inputs = [{"x": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(n)]
    with OrtRunner(reference or model) as runner:
        outputs = [runner.infer(feeds) for feeds in inputs]
    return save_golden(out, inputs, outputs)


def publish(repo: ShipRepository, rel: Release, version: str, channel: str = "stable", **kw: object) -> dict:
    kw.setdefault("latency_budget_ms", 200.0)
    kw.setdefault("gates", ["cosine_min>=0.999"])
    return publish_model(repo, rel.model, rel.golden, channel, version, name="tiny", **kw)  # type: ignore[arg-type]


def agent_config(repo: ShipRepository, url: str, slot_dir: Path, **kw: object) -> AgentConfig:
    base = {"repo_url": url, "root": str(repo.metadata_dir / "1.root.json"), "slot_dir": str(slot_dir),
            "device_id": "dev-1", "runtimes": ("onnxruntime-cpu",), "deadline_s": 30.0, "socket_timeout_s": 5.0,
            "healthcheck_timeout_s": 60.0}
    base.update(kw)
    return AgentConfig(**base)  # type: ignore[arg-type]
