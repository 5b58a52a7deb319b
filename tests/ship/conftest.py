"""Shared fixtures for the ship tests: tiny ONNX releases with golden files, a fresh repository per
test, loopback servers that are always stopped."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeship.ship.agent import Agent, AgentConfig
from edgeship.ship.publish import publish_model
from edgeship.ship.repository import RepoConfig, ShipRepository, init_repo
from edgeship.ship.serve import StaticServer, serve_repository
from models.tiny import tiny_onnx


@dataclasses.dataclass(frozen=True)
class Release:
    model: Path
    golden: Path
    sha256: str


def _golden_for(model: Path, out: Path, reference: Path | None = None, n: int = 4) -> Path:
    """Golden inputs and the outputs of ``reference`` (default: the model itself) run in ORT."""
    import onnxruntime as ort

    from edgeship.check.golden import save_golden

    sess = ort.InferenceSession(str(reference or model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(42)
    inputs = [{"x": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(n)]
    outputs = [{"logits": sess.run(None, feeds)[0]} for feeds in inputs]
    return save_golden(out, inputs, outputs)


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    """v1, v2 (healthy, different weights), bad (its outputs differ from its golden), truncated."""
    from edgeship.core.artifact import file_sha256

    root = tmp_path_factory.mktemp("releases")
    out: dict[str, Release] = {}
    for name, seed in (("v1", 0), ("v2", 1), ("v3", 3)):
        d = root / name
        d.mkdir()
        m = tiny_onnx(d / "model.onnx", seed=seed)
        out[name] = Release(m, _golden_for(m, d / "golden.npz"), file_sha256(m))
    d = root / "bad"
    d.mkdir()
    m = tiny_onnx(d / "model.onnx", seed=2)
    # Golden outputs of another model: this release loads and runs but fails its accuracy gate.
    out["bad"] = Release(m, _golden_for(m, d / "golden.npz", reference=out["v1"].model), file_sha256(m))
    d = root / "truncated"
    d.mkdir()
    data = out["v2"].model.read_bytes()
    (d / "model.onnx").write_bytes(data[: len(data) // 2])
    shutil.copy(out["v2"].golden, d / "golden.npz")
    out["truncated"] = Release(d / "model.onnx", d / "golden.npz", file_sha256(d / "model.onnx"))
    return out


def publish(repo: ShipRepository, rel: Release, version: str, channel: str = "stable", **kw: object) -> dict:
    kw.setdefault("latency_budget_ms", 200.0)
    kw.setdefault("gates", ["cosine_min>=0.999"])
    return publish_model(repo, rel.model, rel.golden, channel, version, name="tiny", **kw)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path, releases: dict[str, Release]) -> ShipRepository:
    r = init_repo(tmp_path / "repo", RepoConfig())
    publish(r, releases["v1"], "1.0.0")
    return r


@pytest.fixture
def server(repo: ShipRepository) -> Iterator[StaticServer]:
    with serve_repository(repo.path) as s:
        yield s


def agent_config(repo: ShipRepository, url: str, slot_dir: Path, **kw: object) -> AgentConfig:
    base = {"repo_url": url, "root": str(repo.metadata_dir / "1.root.json"), "slot_dir": str(slot_dir),
            "device_id": "dev-1", "runtimes": ("onnxruntime-cpu",), "deadline_s": 30.0, "socket_timeout_s": 5.0,
            "healthcheck_timeout_s": 60.0}
    base.update(kw)
    return AgentConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def device(repo: ShipRepository, server: StaticServer, tmp_path: Path) -> Agent:
    """An agent that already runs v1 (first update done)."""
    agent = Agent(agent_config(repo, server.url, tmp_path / "device"))
    result = agent.run_once()
    assert result["outcome"] == "updated", result
    return agent
