"""Signing keys of an update repository: which keys sign which role, and how to reach each signer.

Keys are securesystemslib ``Signer`` objects named by a private-key URI, so a key can live in a local
PEM file (``file2:targets-1a2b.pem``, created with mode 600 by ``ship init``) or in a KMS or HSM
(``awskms:...``, ``gcpkms:...``, ``azurekms:...``, ``hsm:``) — whatever securesystemslib's
``Signer.from_priv_key_uri`` understands. ``REPO/keys/signers.json`` records, for each key id, its
public key, its URI and the roles it signs; it never holds private key material itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from edgeship.core import atomic
from edgeship.core.errors import BadInput, UsageError

SIGNERS_FILE = "signers.json"
ROLES = ("root", "targets", "snapshot", "timestamp")

T = TypeVar("T")


def parse_role_values(items: Iterable[str], what: str, cast: Callable[[str], T]) -> dict[str, T]:
    """``["root=2", "timestamp=1"]`` → ``{"root": 2, "timestamp": 1}`` (``what`` names the option)."""
    out: dict[str, T] = {}
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or role not in ROLES:
            raise UsageError(f"{what} {item!r}: expected ROLE=VALUE with ROLE one of {', '.join(ROLES)}")
        try:
            out[role] = cast(value)
        except ValueError:
            raise UsageError(f"{what} {item!r}: {value!r} is not a number") from None
    return out


def load_public_key(path: str | Path) -> Any:
    """A public key from a PEM file (its key id computed from it) or from a JSON file holding a
    securesystemslib key dict with its ``keyid``; returns a securesystemslib ``Key``."""
    from securesystemslib.signer import Key

    f = Path(path)
    try:
        text = f.read_text()
        if "BEGIN PUBLIC KEY" in text:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            from securesystemslib.signer import SSlibKey

            return SSlibKey.from_crypto(load_pem_public_key(text.encode()))
        data = json.loads(text)
        return Key.from_dict(data.pop("keyid"), data)
    except (OSError, ValueError, KeyError) as exc:
        raise BadInput(f"--public-key {f}: not a PEM public key nor a key JSON with keyid, keytype, "
                       f"scheme, keyval ({type(exc).__name__}: {exc})") from None


class KeyStore:
    """The ``keys/`` folder of a repository: the signer list and the local private key files."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.file = self.folder / SIGNERS_FILE
        self._data: dict[str, Any] = {"keys": {}}
        if self.file.is_file():
            try:
                self._data = json.loads(self.file.read_text())
            except json.JSONDecodeError as exc:
                raise BadInput(f"{self.file}: not valid JSON ({exc.msg}); restore it from a backup") from None
        self._cache: dict[str, Any] = {}

    # -- key management ----------------------------------------------------------------------------
    def generate(self, role: str) -> Any:
        """Create an ed25519 key in a mode-600 PEM file; returns its public key (an SSlibKey)."""
        from securesystemslib.signer import CryptoSigner

        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        signer = CryptoSigner.generate_ed25519()
        key = signer.public_key
        name = f"{role}-{key.keyid[:12]}.pem"
        pem = self.folder / name
        # Create with 600 from the start: the key is never world-readable, not even for a moment.
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(signer.private_bytes)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, pem)
        self.add(key, f"file2:{name}", role)
        self._cache[key.keyid] = signer
        return key

    def add(self, key: Any, uri: str, role: str) -> None:
        """Record an existing key (a KMS/HSM key, say) by its public key and private-key URI."""
        entry = self._data["keys"].setdefault(key.keyid, {"public": key.to_dict(), "uri": uri, "roles": []})
        entry["uri"] = uri
        if role not in entry["roles"]:
            entry["roles"].append(role)
        self.save()

    def retire(self, keyid: str, role: str) -> None:
        """Forget that ``keyid`` signs ``role``; a key with no role left is moved to ``keys/retired``."""
        entry = self._data["keys"].get(keyid)
        if entry is None:
            return
        entry["roles"] = [r for r in entry["roles"] if r != role]
        if not entry["roles"]:
            del self._data["keys"][keyid]
            uri = entry["uri"]
            if uri.startswith("file2:") and not os.path.isabs(uri[6:]):
                pem = self.folder / uri[6:]
                if pem.is_file():
                    (self.folder / "retired").mkdir(mode=0o700, exist_ok=True)
                    os.replace(pem, self.folder / "retired" / pem.name)
        self.save()

    def save(self) -> None:
        atomic.write_json(self.file, self._data)

    def keyids(self, role: str) -> list[str]:
        return [k for k, e in self._data["keys"].items() if role in e["roles"]]

    def public_key(self, keyid: str) -> Any:
        from securesystemslib.signer import Key

        return Key.from_dict(keyid, dict(self._data["keys"][keyid]["public"]))

    def has(self, keyid: str) -> bool:
        return keyid in self._data["keys"]

    # -- signers -----------------------------------------------------------------------------------
    def signer(self, keyid: str) -> Any:
        """The Signer for ``keyid``, loaded through its URI (local file, KMS, HSM...)."""
        from securesystemslib.signer import Signer

        if keyid in self._cache:
            return self._cache[keyid]
        entry = self._data["keys"].get(keyid)
        if entry is None:
            raise BadInput(f"no signer for key {keyid[:12]} in {self.file}; add it with: edgeship ship add-key")
        uri = entry["uri"]
        if uri.startswith("file2:") and not os.path.isabs(uri[6:]):
            uri = f"file2:{self.folder / uri[6:]}"  # local key files are named relative to keys/
        try:
            signer = Signer.from_priv_key_uri(uri, self.public_key(keyid))
        except (OSError, ValueError) as exc:
            raise BadInput(f"cannot load the signer for key {keyid[:12]} ({entry['uri']}): {exc}; "
                           "check the key file or the KMS credentials") from None
        self._cache[keyid] = signer
        return signer
