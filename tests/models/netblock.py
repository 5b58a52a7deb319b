"""Run a process (and every process it starts) with the network blocked: a ``sitecustomize`` on its
``PYTHONPATH`` makes every DNS lookup and every connection to a non-loopback address fail, and
records each attempt, with the stack that made it, in a log the test reads afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SITECUSTOMIZE = r'''
import os
import socket
import traceback

_LOG = os.environ["EDGESHIP_TEST_NETLOG"]
_LOCAL = {"localhost", "127.0.0.1", "::1", "", None}


def _record(what):
    with open(_LOG, "a") as fh:
        fh.write(f"--- {what} (pid {os.getpid()})\n" + "".join(traceback.format_stack(limit=25)))
    raise OSError(f"network blocked by the test: {what}")


def _host(address):
    return address[0] if isinstance(address, tuple) and address else address


# the unpatched functions, kept once (patching twice must not wrap the patches)
_connect = getattr(socket, "_edgeship_connect", socket.socket.connect)
_connect_ex = getattr(socket, "_edgeship_connect_ex", socket.socket.connect_ex)
_getaddrinfo = getattr(socket, "_edgeship_getaddrinfo", socket.getaddrinfo)
socket._edgeship_connect, socket._edgeship_connect_ex = _connect, _connect_ex
socket._edgeship_getaddrinfo = _getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and _host(address) not in _LOCAL:
        _record(f"connect {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and _host(address) not in _LOCAL:
        _record(f"connect_ex {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL:
        _record(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


def block_this_process(folder: Path) -> Path:
    """Block the network in this process too (the same patches), and in the processes it starts
    (``PYTHONPATH``); returns the log of attempts. For tests that run edgeship in-process."""
    env, log = blocked_env(folder)
    os.environ["EDGESHIP_TEST_NETLOG"] = env["EDGESHIP_TEST_NETLOG"]
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]
    exec(compile(SITECUSTOMIZE, str(folder / "sitecustomize.py"), "exec"), {"__name__": "sitecustomize"})
    return log


def unblock_this_process() -> None:
    import socket

    for name, attr in (("connect", "_edgeship_connect"), ("connect_ex", "_edgeship_connect_ex")):
        original = getattr(socket, attr, None)
        if original is not None:
            setattr(socket.socket, name, original)
    if getattr(socket, "_edgeship_getaddrinfo", None) is not None:
        socket.getaddrinfo = socket._edgeship_getaddrinfo


def blocked_env(folder: Path) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes cannot reach the network, and the log of attempts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = folder / "attempts.log"
    log.write_text("")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(Path(__file__).resolve().parents[1]),
                                         *filter(None, [env.get("PYTHONPATH")])])
    env["EDGESHIP_TEST_NETLOG"] = str(log)
    # no offline switches: what edgeship and its converters do by themselves is what is tested
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(key, None)
    return env, log


def run_blocked(args: list[str], folder: Path, timeout: float = 1200) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``args`` (``python`` is this interpreter) with the network blocked; (process, attempts)."""
    env, log = blocked_env(folder)
    cmd = [sys.executable if a == "python" else a for a in args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, log.read_text()
