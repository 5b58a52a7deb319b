"""Access tokens of the rollout service.

Two bearer tokens: one for operators (start/advance/halt/resume rollouts, fleet status) and one for
devices (assignments, reports), so a device cannot steer rollouts and nobody without a token can
halt a fleet with forged failure reports. ``edgeship ship rollout-token FILE`` makes one. A service
without tokens is open: allowed on loopback (development), refused on other addresses.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgeship.core.errors import BadInput

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass(frozen=True)
class AccessTokens:
    """Bearer tokens of the rollout service; a role whose token is None is open."""

    admin: str | None = None
    device: str | None = None

    @property
    def open(self) -> bool:
        return self.admin is None or self.device is None

    @property
    def open_roles(self) -> tuple[str, ...]:
        """Who may call the service without a token: ``operators``, ``devices``."""
        return tuple(who for who, token in (("operators", self.admin), ("devices", self.device)) if token is None)


def read_token(path: str | Path) -> str:
    """A token from a file (one line; made by ``edgeship ship rollout-token``)."""
    f = Path(path)
    try:
        token = f.read_text().strip()
    except OSError as exc:
        raise BadInput(f"token file {str(f)!r}: {exc.strerror or exc}; make one with "
                       "edgeship ship rollout-token FILE") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise BadInput(f"token file {str(f)!r} holds no usable token (one line of at least 16 characters)")
    return token


def read_optional_token(path: str | Path | None) -> str | None:
    """The token in ``path``, or None (an open role) when no file is given."""
    return read_token(path) if path else None


def tokens_from_files(admin_file: str | Path | None = None, device_file: str | Path | None = None) -> AccessTokens:
    """The service's tokens from the operators' and the devices' token files (either may be absent)."""
    return AccessTokens(admin=read_optional_token(admin_file), device=read_optional_token(device_file))


def write_token(path: str | Path) -> Path:
    """A new random token in a new file readable by its owner only."""
    import secrets

    f = Path(path)
    if f.exists():
        raise BadInput(f"{str(f)!r} exists; tokens are not overwritten (delete it first to replace it)")
    try:
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BadInput(f"cannot create {str(f)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return f


def check_exposure(host: str, tokens: AccessTokens, insecure: bool) -> None:
    """Refuse to serve an open service on an address other machines can reach."""
    if host in LOOPBACK or not tokens.open or insecure:
        return
    raise BadInput(f"the rollout service on {host} would be open to anyone who reaches it; give "
                   "--admin-token-file and --device-token-file (edgeship ship rollout-token FILE makes them), "
                   "or --insecure-no-auth on a network you trust")
