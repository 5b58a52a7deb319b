"""SIGKILL of a real agent process at each step of an update, then a restart: the device serves
exactly the old or the new model (a loadable file with the recorded hash), never neither."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ship_helpers import publish

from edgeship.core.artifact import file_sha256
from edgeship.ship.agent import active_model
from edgeship.ship.slots import SlotDir

pytestmark = pytest.mark.slow


def _agent_cmd(repo, url: str, slot: Path) -> list[str]:
    return [sys.executable, "-m", "edgeship", "agent", "run", "--repo", url, "--root",
            str(repo.metadata_dir / "1.root.json"), "--slot-dir", str(slot), "--device-id", "crash-1",
            "--runtime", "onnxruntime-cpu", "--once", "--json", "--deadline", "60"]


def _run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _kill_at(cmd: list[str], step: str, timeout: float = 60.0) -> None:
    """Start the agent paused at ``step``, wait until it is there, SIGKILL it."""
    env = {**os.environ, "EDGESHIP_AGENT_PAUSE_AT": step}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    seen = b""
    try:
        while f"PAUSED {step}".encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, f"agent never reached {step}: {seen.decode()[-500:]}"
            if sel.select(timeout=left):
                seen += os.read(proc.stderr.fileno(), 65536)  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL


def _serving_sha(slot: Path) -> str:
    """What a serving process would load now: it must load and run."""
    import onnxruntime as ort

    model = active_model(slot)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert np.isfinite(sess.run(None, {"x": np.ones((1, 16), np.float32)})[0]).all()
    return file_sha256(model)


@pytest.mark.parametrize("step", ["download", "stage", "fsync", "switch", "switched"])
def test_sigkill_at_each_step_then_restart(step, repo, server, releases, tmp_path):
    slot = tmp_path / "device"
    cmd = _agent_cmd(repo, server.url, slot)
    assert _run(cmd)["outcome"] == "updated"  # v1 installed
    publish(repo, releases["v2"], "2.0.0")
    _kill_at(cmd, step)
    after_kill = _serving_sha(slot)
    expected = releases["v2"].sha256 if step == "switched" else releases["v1"].sha256
    assert after_kill == expected
    result = _run(cmd)  # the restarted agent finishes (or confirms) the update
    assert result["outcome"] in ("updated", "up_to_date"), result
    assert _serving_sha(slot) == releases["v2"].sha256
    ptr = SlotDir(slot).pointer()
    assert ptr["active"]["sha256"] == releases["v2"].sha256
    assert ptr["previous"]["sha256"] == releases["v1"].sha256
    assert not list(slot.glob(".active.json.*"))  # a temp pointer left by the kill is cleaned up
