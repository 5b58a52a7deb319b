"""The device's HTTP fetcher: timeouts on every read, an overall deadline, and resumable downloads.

``DeadlineFetcher`` plugs into python-tuf's ``Updater`` (a ``FetcherInterface``) for metadata: a
server that sends slowly or without end is cut off by the per-read timeout, the deadline and the
length limit TUF passes in. ``download_resumable`` fetches a target file into a ``.part`` file and,
after an interruption, continues it with an HTTP range request; the finished file is then verified
against the TUF target metadata (length and sha256) by the caller before it is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface


class DeadlineExceeded(exceptions.SlowRetrievalError):
    """The whole download took longer than its deadline (a slow-retrieval attack or a bad link)."""


class DeadlineFetcher(FetcherInterface):
    """urllib3-based fetcher with a socket timeout per read and an overall deadline per update.

    ``deadline`` is an absolute ``time.monotonic()`` value shared by every request of one update,
    so a repository that answers each request just fast enough still cannot stall the device.
    """

    def __init__(self, socket_timeout: float = 10.0, deadline: float | None = None, chunk_size: int = 65536,
                 user_agent: str = "edgeship-agent", pool: Any = None, ca_file: str | None = None) -> None:
        import urllib3

        self.socket_timeout = socket_timeout
        self.deadline = deadline
        self.chunk_size = chunk_size
        self.user_agent = user_agent
        # https URLs are verified against ca_file (a PEM bundle) or the system's certificates
        self.pool = pool or urllib3.PoolManager(retries=False, ca_certs=ca_file)

    def remaining(self) -> float:
        if self.deadline is None:
            return self.socket_timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("update deadline exceeded")
        return left

    def _timeout(self) -> Any:
        import urllib3

        t = min(self.socket_timeout, self.remaining())
        return urllib3.Timeout(connect=t, read=t)

    def _open(self, url: str, headers: dict[str, str] | None = None) -> Any:
        import urllib3

        try:
            resp = self.pool.request("GET", url, headers={"User-Agent": self.user_agent, **(headers or {})},
                                     preload_content=False,
                                      timeout=self._timeout(), redirect=False)
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError(f"timed out connecting to {url}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise exceptions.DownloadError(f"cannot reach {url}: {type(exc).__name__}") from exc
        return resp

    def _stream(self, resp: Any) -> Iterator[bytes]:
        import urllib3

        try:
            while True:
                self.remaining()  # raises once the deadline has passed
                try:
                    # read1: whatever has arrived (up to chunk_size); read() would wait for a full
                    # chunk, so a server trickling bytes could hold us far past the deadline.
                    chunk = resp.read1(self.chunk_size)
                except urllib3.exceptions.TimeoutError as exc:
                    raise exceptions.SlowRetrievalError("read timed out") from exc
                except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError, OSError) as exc:
                    raise exceptions.DownloadError(f"connection dropped: {type(exc).__name__}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            resp.release_conn()

    def _fetch(self, url: str) -> Iterator[bytes]:
        resp = self._open(url)
        if resp.status >= 400:
            resp.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status} for {url}", resp.status)
        return self._stream(resp)

    def download_resumable(self, url: str, part: Path, length: int,
                           on_chunk: Callable[[int], None] | None = None) -> Path:
        """Download ``url`` into ``part``, continuing from the bytes already there.

        Refuses more than ``length`` bytes (endless data). Raises DownloadError when the connection
        drops: the bytes received so far stay in ``part`` and the next call resumes from there.
        """
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        if have > length:
            part.unlink()
            have = 0
        if have == length:
            return part
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._open(url, headers)
        if resp.status == 416:  # our partial file is not a prefix of theirs: start again
            resp.release_conn()
            part.unlink(missing_ok=True)
            return self.download_resumable(url, part, length)
        if resp.status >= 400:
            resp.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status} for {url}", resp.status)
        mode = "ab" if resp.status == 206 and have else "wb"
        received = have if mode == "ab" else 0
        with open(part, mode) as fh:
            try:
                for chunk in self._stream(resp):
                    received += len(chunk)
                    if received > length:
                        raise exceptions.DownloadLengthMismatchError(
                            f"{url}: more than the {length} bytes the signed metadata allows")
                    fh.write(chunk)
                    if on_chunk:
                        on_chunk(received)
            finally:
                fh.flush()
                os.fsync(fh.fileno())
        if received > length:  # pragma: no cover - raised above
            raise exceptions.DownloadLengthMismatchError(url)
        if received < length:
            raise exceptions.DownloadError(f"{url}: connection closed after {received} of {length} bytes")
        return part
