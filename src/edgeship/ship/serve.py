"""Serve a repository's ``public/`` folder over HTTP, or HTTPS when given a certificate (stdlib
ThreadingHTTPServer, loopback by default). Any static web server or object store can serve the same
folder; this one adds HTTP range requests so devices can resume interrupted downloads."""

from __future__ import annotations

import functools
import http.server
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=N-`` support (206 Partial Content), no directory listings."""

    protocol_version = "HTTP/1.1"  # keep-alive: a device fetches several files per update
    timeout = 60  # an idle keep-alive connection is closed after a minute (frees its thread)

    def setup(self) -> None:
        super().setup()
        import ssl

        if isinstance(self.request, ssl.SSLSocket):  # the TLS handshake, in this request's thread
            self.request.settimeout(self.timeout)
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        log = getattr(self.server, "request_log", None)
        if log is not None:
            log.append(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}".strip())

    def list_directory(self, path: str) -> None:  # type: ignore[override]
        self.send_error(404, "no listing")
        return None

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        if os.path.isdir(path) or not os.path.isfile(path):
            self.send_error(404, "not found")
            return None
        match = _RANGE.match(self.headers.get("Range", ""))
        fh = open(path, "rb")  # noqa: SIM115 - handed to copyfile by the base class
        size = os.fstat(fh.fileno()).st_size
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
            if start >= size or end < start:
                fh.close()
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            end = min(end, size - 1)
            fh.seek(start)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self._remaining = end - start + 1
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self._remaining = size
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return fh

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_remaining", None)
        while remaining is None or remaining > 0:
            chunk = source.read(65536 if remaining is None else min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)


class QuietThreadingHTTPServer(http.server.ThreadingHTTPServer):
    """A client that goes away mid-response is normal on a device network: no traceback for it."""

    daemon_threads = True
    request_queue_size = 128  # many devices connect at once; the default backlog of 5 drops SYNs

    def handle_error(self, request: Any, client_address: Any) -> None:
        import ssl

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ssl.SSLError):
            return
        super().handle_error(request, client_address)


class StaticServer:
    """A running static server; ``url`` is its base URL. Use as a context manager or call ``stop()``."""

    def __init__(self, folder: str | Path, host: str = "127.0.0.1", port: int = 0,
                 handler: type[http.server.BaseHTTPRequestHandler] = RangeRequestHandler,
                 certfile: str | Path | None = None, keyfile: str | Path | None = None) -> None:
        from edgeship.ship.tls import tls_files

        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(f"folder {str(folder)!r} to serve does not exist")
        tls = tls_files(certfile, keyfile)
        self.folder = folder
        self.httpd = QuietThreadingHTTPServer((host, port), functools.partial(handler, directory=str(folder)))
        if tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            except (ssl.SSLError, OSError) as exc:
                raise BadInput(f"cannot load the certificate {tls[0]} with its key {tls[1]}: {exc}") from None
            # the handshake runs in each request's thread (setup), not in the accepting one
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.httpd.request_log = []  # type: ignore[attr-defined]
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def requests(self) -> list[str]:
        return self.httpd.request_log  # type: ignore[attr-defined,no-any-return]

    def start(self) -> StaticServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name=f"static-{self.port}")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_repository(repo: str | Path, host: str = "127.0.0.1", port: int = 0, certfile: str | Path | None = None,
                     keyfile: str | Path | None = None) -> StaticServer:
    """A (not yet started) server for ``REPO/public``: metadata at ``URL/metadata``, targets at
    ``URL/targets``; HTTPS with a certificate and its key (PEM files)."""
    from edgeship.ship.repository import REPO_FILE

    repo = Path(repo)
    public = repo / "public" if (repo / REPO_FILE).is_file() else repo
    if not (public / "metadata").is_dir():
        raise BadInput(f"{str(repo)!r} has no public/metadata folder; create the repository with: edgeship ship init")
    return StaticServer(public, host, port, certfile=certfile, keyfile=keyfile)
