"""Agent runs for the power-loss tests, in processes forked from a forkserver that imported the
agent once (a trial costs a fork, not an interpreter start).

``run_agent`` runs one update cycle in its own process group. With a ``kill_step`` it dies by
SIGKILL — its whole group, health-check process included, as a power cut would — at a point
``delay_s`` into that step (a timer thread, so the kill lands anywhere: inside a write, an fsync,
a rename or a wait), and at the step's end at the latest. A step lasts from its first checkpoint
to the next checkpoint of another step (the first-inferences health check belongs to
``probation``), or to the end of the cycle. With ``fault`` the disk fails instead at the step's
first checkpoint: ``full`` fills the file system, ``readonly`` remounts it read-only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

PART_OF = {"probation": {"healthcheck"}}  # checkpoints of another step that do not end this one


def _die() -> None:
    os.killpg(0, signal.SIGKILL)


def _fill(folder: Path) -> None:
    """Write a filler file until the file system is full."""
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def _remount_ro(mountpoint: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["mount", "-o", "remount,ro", mountpoint], capture_output=True).returncode == 0:
            return
        time.sleep(0.0005)


def run_agent(config: dict[str, Any], kill_step: str | None = None, delay_s: float = 0.0,
              fault: str | None = None, mountpoint: str = "", trace: str = "") -> None:
    from edgeship.ship.agent import Agent, AgentConfig

    os.setpgrp()
    seen: list[tuple[float, str]] = []
    state = {"armed": False}

    def on_step(step: str) -> None:
        seen.append((time.monotonic(), step))
        if kill_step is None or (step in PART_OF.get(kill_step, ()) and state["armed"]):
            return
        if step == kill_step and not state["armed"]:
            state["armed"] = True
            if fault == "full":
                _fill(Path(mountpoint))
            elif fault == "readonly":
                # The kernel refuses while a file is open for writing (a download, a copy): keep
                # trying, so the disk turns read-only the moment that file is closed.
                threading.Thread(target=_remount_ro, args=(mountpoint,), daemon=True).start()
                time.sleep(0.005)
            else:
                threading.Timer(delay_s, _die).start()
        elif state["armed"] and step != kill_step and fault is None:
            _die()  # the step is over before the timer fired: die at its end

    try:
        outcome = Agent(AgentConfig.from_dict(config), on_step=on_step).run_once()
    except BaseException:  # the test names what went wrong, not only the exit code
        if trace:
            import traceback

            Path(trace).with_suffix(".error").write_text(traceback.format_exc())
        raise
    if state["armed"] and fault is None:
        _die()
    if trace:
        Path(trace).write_text(json.dumps({"outcome": outcome.to_dict(), "steps": seen}))
