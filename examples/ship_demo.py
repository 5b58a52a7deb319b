"""The end of ``make demo`` (examples/demo.py): publish the chosen models of the demo's runs to a local
signed update repository, serve it on loopback, and update one local device once with the real agent
command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome


def publish_and_update(run_dirs: list[Path], work: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Init a repository in ``work/repo``, publish the chosen variants of ``run_dirs`` on channel
    ``stable``, serve it on 127.0.0.1, run ``edgeship agent run --once`` for the first release into
    ``work/device``, print what happened and return a summary."""
    from edgeship.ship.publish import publish_run
    from edgeship.ship.repository import init_repo
    from edgeship.ship.serve import serve_repository
    from edgeship.ship.slots import SlotDir

    t0 = time.perf_counter()
    work = Path(work)
    for sub in ("repo", "device"):
        if (work / sub).exists():
            shutil.rmtree(work / sub)  # the demo's own folders, remade on every run
    work.mkdir(parents=True, exist_ok=True)
    repo = init_repo(work / "repo")
    releases: list[dict[str, Any]] = []
    skipped: list[str] = []
    for run in run_dirs:
        try:
            releases += publish_run(repo, Path(run), "stable", "1.0.0")
        except BadInput as exc:
            skipped.append(f"{run}: {exc}")
    if not releases:
        raise BadInput("no run had a variant to publish: " + "; ".join(skipped))
    say(f"\nship: signed repository {repo.path} (TUF: root/targets/snapshot/timestamp keys, mode 600); published "
        + ", ".join(f"{r['name']} ({r['runtime']}, {r['precision']})" for r in releases))
    for s in skipped:
        say(f"ship: skipped {s}")
    first = releases[0]
    device = work / "device"
    cmd = [sys.executable, "-m", "edgeship", "agent", "run", "--repo", "", "--root",
           str(repo.metadata_dir / "1.root.json"), "--slot-dir", str(device), "--device-id", "demo-device-1",
           "--model", first["name"], "--once", "--json", "--deadline", "60"]
    with serve_repository(repo.path) as server:
        cmd[cmd.index("--repo") + 1] = server.url
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    try:
        outcome = Outcome.from_dict(json.loads(proc.stdout))
    except json.JSONDecodeError:  # no JSON: the agent failed before its cycle (bad input)
        outcome = Outcome("error", detail=(proc.stderr.strip().splitlines() or ["no output"])[-1])
    status = SlotDir(device).status() if device.is_dir() else {}
    active = status.get("active") or {}
    say(f"ship: served on {server.url}; `edgeship agent run --once` on device demo-device-1: {outcome.kind}"
        + (f" — {outcome.detail}" if outcome.detail else ""))
    if active:
        health = outcome.health or {}
        say(f"ship: device now serves {active.get('name')} {active.get('version')} from slot {active.get('slot')} "
            f"(sha256 {str(active.get('sha256'))[:12]}); health check: {health.get('why', '-')}")
    summary = {"repo": str(repo.path), "url": server.url, "releases": releases, "skipped": skipped,
               "device": str(device), "update": outcome.to_dict(), "active": active or None,
               "seconds": round(time.perf_counter() - t0, 1)}
    say(f"ship: done in {summary['seconds']} s (status: edgeship agent status --slot-dir {device})")
    return summary
