"""Shared fixtures for the ship tests: tiny ONNX releases with golden files, a fresh repository per
test, loopback servers that are always stopped."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ship_helpers import Release, agent_config, golden_for, publish

from edgeship.ship.agent import Agent
from edgeship.ship.repository import RepoConfig, ShipRepository, init_repo
from edgeship.ship.serve import StaticServer, serve_repository
from models.tiny import tiny_onnx

# The demo's ship step (examples/ship_demo.py) and the fleet simulation (benchmarks/fleet_simulation.py)
# live outside the library; their tests import them from there.
ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "examples", ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


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
        out[name] = Release(m, golden_for(m, d / "golden.npz"), file_sha256(m))
    d = root / "bad"
    d.mkdir()
    m = tiny_onnx(d / "model.onnx", seed=2)
    # Golden outputs of another model: this release loads and runs but fails its accuracy gate.
    out["bad"] = Release(m, golden_for(m, d / "golden.npz", reference=out["v1"].model), file_sha256(m))
    d = root / "truncated"
    d.mkdir()
    data = out["v2"].model.read_bytes()
    (d / "model.onnx").write_bytes(data[: len(data) // 2])
    shutil.copy(out["v2"].golden, d / "golden.npz")
    out["truncated"] = Release(d / "model.onnx", d / "golden.npz", file_sha256(d / "model.onnx"))
    return out


@pytest.fixture
def repo(tmp_path: Path, releases: dict[str, Release]) -> ShipRepository:
    r = init_repo(tmp_path / "repo", RepoConfig())
    publish(r, releases["v1"], "1.0.0")
    return r


@pytest.fixture
def server(repo: ShipRepository) -> Iterator[StaticServer]:
    with serve_repository(repo.path) as s:
        yield s


@pytest.fixture
def device(repo: ShipRepository, server: StaticServer, tmp_path: Path) -> Agent:
    """An agent that already runs v1 (first update done)."""
    agent = Agent(agent_config(repo, server.url, tmp_path / "device"))
    result = agent.run_once()
    assert result.kind == "updated", result
    return agent


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One PostgreSQL server for the session (started on first use, stopped at the end)."""
    from pg_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh rollout database: a SQLite file, or a database of its own on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "rollouts.db")
    return request.getfixturevalue("postgres").new_database()  # type: ignore[no-any-return]
