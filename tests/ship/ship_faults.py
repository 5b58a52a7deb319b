"""Fault-injecting static servers over a repository's public folder: small http.server handlers that
behave like a hostile or broken network for the files whose path matches ``pattern``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from edgeship.ship.serve import RangeRequestHandler, StaticServer


class FaultHandler(RangeRequestHandler):
    """Serves files normally except those whose URL path contains ``server.fault_pattern``."""

    def _faulty(self) -> bool:
        pattern = getattr(self.server, "fault_pattern", None)
        return bool(pattern) and pattern in self.path

    def do_GET(self) -> None:
        log = self.server.request_log  # type: ignore[attr-defined]
        log.append(f"GET {self.path} range={self.headers.get('Range', '')}")
        if self._faulty():
            fault = getattr(self, f"fault_{self.server.fault}")  # type: ignore[attr-defined]
            fault()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _file(self) -> bytes:
        return Path(self.translate_path(self.path)).read_bytes()

    # -- faults ----------------------------------------------------------------------------------
    def fault_tamper(self) -> None:
        """Right length, wrong bytes (a flipped byte in the middle)."""
        data = bytearray(self._file())
        data[len(data) // 2] ^= 0xFF
        self._send(bytes(data))

    def fault_endless(self) -> None:
        """Claims nothing about the length and never stops sending."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\0" * 65536
        deadline = time.monotonic() + 20  # the server gives up eventually; the client must stop first
        try:
            while time.monotonic() < deadline:
                self.wfile.write(chunk)
        except OSError:
            pass
        self.close_connection = True

    def fault_slow(self) -> None:
        """Sends one byte every 0.2 s: each read is quick enough, the whole never arrives in time."""
        data = self._file()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for b in data:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.2)
                if getattr(self.server, "stopping", False):
                    break
        except OSError:
            pass
        self.close_connection = True

    def fault_drop(self) -> None:
        """The first request (without Range) gets 40% of the bytes, then the connection drops;
        later requests are served normally (with range support)."""
        with self.server.fault_lock:  # type: ignore[attr-defined]
            first = not self.server.dropped  # type: ignore[attr-defined]
            self.server.dropped = True  # type: ignore[attr-defined]
        if not first:
            super().do_GET()
            return
        data = self._file()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: int(len(data) * 0.4)])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def fault_server(folder: Path, fault: str, pattern: str) -> StaticServer:
    server = StaticServer(folder, handler=FaultHandler)
    httpd = server.httpd
    httpd.fault = fault  # type: ignore[attr-defined]
    httpd.fault_pattern = pattern  # type: ignore[attr-defined]
    httpd.fault_lock = threading.Lock()  # type: ignore[attr-defined]
    httpd.dropped = False  # type: ignore[attr-defined]
    return server
