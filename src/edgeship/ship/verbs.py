"""The ship verbs as typed functions: what ``edgeship ship`` and ``edgeship agent`` do, callable from
Python (``edgeship.api`` exposes them). The CLI parses its flags into these parameters, calls one
verb and prints what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.ship.agent import Agent, AgentConfig
from edgeship.ship.outcome import Outcome
from edgeship.ship.publish import Release, publish
from edgeship.ship.repository import RepoConfig, ShipRepository, init_repo
from edgeship.ship.rollout.client import connect
from edgeship.ship.rollout.config import RolloutConfig, RolloutPlan
from edgeship.ship.rollout.limits import ServiceLimits
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import tokens_from_files


# -- the repository ------------------------------------------------------------------------------
def init_repository(path: str | Path, thresholds: Mapping[str, int] | None = None,
                    keys_per_role: Mapping[str, int] | None = None,
                    expiry_days: Mapping[str, float] | None = None) -> ShipRepository:
    """``ship init``: keys and version-1 metadata in an empty folder. ``thresholds`` (signatures a
    role needs; that many keys are made), ``keys_per_role`` and ``expiry_days`` are keyed by role."""
    fields: dict[str, Any] = {f"{role}_threshold": n for role, n in (thresholds or {}).items()}
    fields.update({f"{role}_expiry_days": days for role, days in (expiry_days or {}).items()})
    return init_repo(path, RepoConfig(**fields), dict(keys_per_role or {}))


def publish_release(repo: str | Path, source: str | Path, channel: str, version: str, *,
                    golden: str | Path | None = None, name: str | None = None, runtime: str = "onnxruntime-cpu",
                    precision: str = "fp32", gates: Sequence[str] | None = None,
                    latency_budget_ms: float | None = None, min_agent_version: str | None = None,
                    rollout: RolloutPlan | None = None,
                    device_requirements: Mapping[str, str] | None = None) -> list[Release]:
    """``ship publish``: publish a model file (with ``golden``) or the chosen variants of a run
    directory on ``channel``, then, with a ``rollout`` plan, give the rollout service each release's
    reference profile (for drift) and start a staged rollout of it from the channel's previous one;
    each release then carries its rollout's id under ``rollout``."""
    client = connect(rollout.url, rollout.token_file, ca_file=rollout.ca_file) if rollout else None
    ship = ShipRepository(repo)
    releases = publish(ship, source, channel, version, golden=golden, name=name, runtime=runtime,
                       precision=precision, gates=gates, latency_budget_ms=latency_budget_ms,
                       min_agent_version=min_agent_version, device_requirements=device_requirements)
    if rollout is not None and client is not None:
        for rel in releases:
            client.put_profile(rel["target"], release_profile(ship, rel["target"]))
            started = client.start(rollout.config_for(rel["name"], channel, rel["target"], rel["previous"]))
            rel["rollout"] = int(started["id"])
    return releases


def release_profile(repo: ShipRepository | str | Path, target: str) -> dict[str, Any]:
    """The reference profile of a published release: the statistics of its golden data."""
    from edgeship.ship.telemetry import reference_profile

    ship = repo if isinstance(repo, ShipRepository) else ShipRepository(repo)
    info = ship.targets().get(target)
    golden = ((info.custom or {}).get("edgeship") or {}).get("golden") if info is not None else None
    if not golden:
        raise BadInput(f"{target!r} is not a model release of {ship.path} (no golden file in its metadata)")
    return reference_profile(ship.target_file(golden))


def add_signing_key(repo: str | Path, role: str, uri: str, public_key_file: str | Path) -> str:
    """``ship add-key``: let the key at ``uri`` (file2:, awskms:, hsm:, ...) sign ``role``; its key id."""
    from edgeship.ship.keys import load_public_key

    key = load_public_key(public_key_file)
    ShipRepository(repo).add_key(role, uri, key)
    return str(key.keyid)


def revoke_signing_key(repo: str | Path, role: str, keyid_prefix: str) -> str:
    """``ship revoke-key``: stop trusting the key of ``role`` whose id starts with ``keyid_prefix``."""
    ship = ShipRepository(repo)
    keyid = ship.keyid_for(role, keyid_prefix)
    ship.revoke_key(role, keyid)
    return keyid


# -- rollouts ------------------------------------------------------------------------------------
def start_rollout(url: str, config: RolloutConfig, token_file: str | Path | None = None,
                  repo: str | Path | None = None, ca_file: str | Path | None = None) -> dict[str, Any]:
    """``ship rollout start``: the new rollout as the service stores it (id, status, stage, percent...);
    with ``repo``, the release's reference profile (for drift) is given to the service first."""
    client = connect(url, token_file, ca_file=ca_file)
    if repo is not None:
        client.put_profile(config.target, release_profile(repo, config.target))
    return client.start(config)


def steer_rollout(url: str, rollout_id: int, action: str, token_file: str | Path | None = None,
                  ca_file: str | Path | None = None) -> dict[str, Any]:
    """``ship rollout advance|halt|resume ID``: the rollout after the action."""
    return connect(url, token_file, ca_file=ca_file).action(rollout_id, action)


def fleet_status(url: str, token_file: str | Path | None = None, ca_file: str | Path | None = None) -> dict[str, Any]:
    """``ship status``: rollouts with their stage statistics, gates and events, devices, devices per target."""
    return connect(url, token_file, ca_file=ca_file).status()


def rollout_server(db: str | Path, host: str = "127.0.0.1", port: int = 8081,
                   admin_token_file: str | Path | None = None, device_token_file: str | Path | None = None,
                   insecure: bool = False, certfile: str | Path | None = None, keyfile: str | Path | None = None,
                   limits: ServiceLimits | None = None) -> RolloutServer:
    """``ship rollout-server``: the service bound to ``host:port`` over the database ``db`` (a SQLite
    path or a ``postgresql://`` URL; ``.run()`` serves it, ``.start()`` in a thread), HTTPS with a
    certificate and key; refused when it would be open on an address other machines reach."""
    tokens = tokens_from_files(admin_token_file, device_token_file)
    return RolloutServer(db, host, port, tokens=tokens, insecure=insecure, limits=limits, certfile=certfile,
                         keyfile=keyfile)


# -- the device ----------------------------------------------------------------------------------
def agent_run_once(config: AgentConfig) -> Outcome:
    """``agent run --once``: one update cycle of the device ``config`` describes."""
    return Agent(config).run_once()


def device_status(slot_dir: str | Path) -> dict[str, Any]:
    """``agent status``: the active and previous slots, the last update's outcome, releases that failed."""
    from edgeship.ship.slots import SlotDir

    if not Path(slot_dir).is_dir():
        raise BadInput(f"slot directory {str(slot_dir)!r} does not exist")
    return SlotDir(slot_dir).status()
