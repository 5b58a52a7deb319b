"""HTTPS for the repository server and the rollout service: the certificate and key they are given.

Bearer tokens and device ids cross the network in every request; over plain HTTP anyone on the path
reads them. Both servers serve HTTPS directly when given a PEM certificate and its private key
(``--cert``/``--key``); devices and operators verify it against the system's certificates or the
PEM bundle given with ``--ca-file``.
"""

from __future__ import annotations

from pathlib import Path

from edgeship.core.errors import BadInput


def tls_files(certfile: str | Path | None, keyfile: str | Path | None) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with (both or neither), checked to exist."""
    if not certfile and not keyfile:
        return None
    if not certfile or not keyfile:
        raise BadInput("HTTPS needs both --cert FILE.pem and --key FILE.pem")
    for f in (certfile, keyfile):
        if not Path(f).is_file():
            raise BadInput(f"{str(f)!r} not found; give the PEM certificate and its private key")
    return Path(certfile), Path(keyfile)
