"""Instructions per inference from the CPU's counters, through ``perf stat``: a figure that does not
move with the machine's load, unlike latency.

The benchmark worker runs under ``perf stat -D -1 --control fifo:CTL,ACK`` (counting off at start);
after timing it enables counting, runs a fixed number of inferences and disables it again, so the
count covers those inferences (every thread of the process, user space) and nothing else: not the
interpreter starting, the imports or the model loading. Where perf cannot count (not installed,
forbidden by ``kernel.perf_event_paranoid``, or no hardware counters, as in most VMs),
:func:`perf_support` says why and the result carries that sentence instead of a figure.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import IO

INSTRUCTIONS = "instructions:u"


@functools.lru_cache(maxsize=4)
def perf_support(event: str = INSTRUCTIONS) -> tuple[bool, str]:
    """(True, "") when ``perf stat`` can count ``event`` here, else (False, why not)."""
    perf = shutil.which("perf")
    if perf is None:
        return False, "perf is not installed (Debian: apt-get install linux-perf), so instructions were not counted"
    try:
        proc = subprocess.run([perf, "stat", "-x,", "-e", event, "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"perf stat could not run ({exc})"
    value = _value(proc.stderr, event)
    if value is not None:
        return True, ""
    text = proc.stderr
    if "<not supported>" in text:
        return False, ("this CPU's performance counters are not exposed here (perf stat: instructions <not supported>; "
                       "typical of a virtual machine), so instructions were not counted")
    if "paranoid" in text or "Permission" in text or "<not counted>" in text:
        level = _read("/proc/sys/kernel/perf_event_paranoid")
        return False, (f"kernel.perf_event_paranoid is {level}: perf may not count here "
                       "(sysctl kernel.perf_event_paranoid=1 allows it), so instructions were not counted")
    first = (text.strip().splitlines() or ["no output"])[-1][:200]
    return False, f"perf stat cannot count {event} here ({first})"


def perf_command(ctl: Path, ack: Path, output: Path, events: tuple[str, ...] = (INSTRUCTIONS,)) -> list[str]:
    """The prefix that runs a command under perf, counting off until the command enables it."""
    return [shutil.which("perf") or "perf", "stat", "-x,", "-o", str(output), "-D", "-1",
            "--control", f"fifo:{ctl},{ack}", "-e", ",".join(events), "--"]


def read_counts(output: Path, events: tuple[str, ...] = (INSTRUCTIONS,)) -> dict[str, float | None]:
    """The counted value of each event in perf's ``-x,`` output file (None: not counted)."""
    try:
        text = output.read_text()
    except OSError:
        return dict.fromkeys(events)
    return {e: _value(text, e) for e in events}


class PerfControl:
    """The worker's end of perf's control FIFOs: ``enable()`` / ``disable()`` wait for perf's ack."""

    def __init__(self, ctl: str, ack: str) -> None:
        self._ctl: IO[str] = open(ctl, "w")  # noqa: SIM115 - held for the worker's life, closed by close()
        self._ack: IO[str] = open(ack)  # noqa: SIM115

    def _send(self, command: str) -> None:
        self._ctl.write(command + "\n")
        self._ctl.flush()
        self._ack.readline()

    def enable(self) -> None:
        self._send("enable")

    def disable(self) -> None:
        self._send("disable")

    def close(self) -> None:
        self._ctl.close()
        self._ack.close()


def _value(text: str, event: str) -> float | None:
    """The count of ``event`` in ``perf stat -x,`` output (value,unit,event,...), None if not counted."""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2] == event:
            try:
                return float(fields[0])
            except ValueError:  # <not supported>, <not counted>
                return None
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unknown"
