"""The update repository: a TUF repository (python-tuf Metadata API) in a plain folder.

Layout::

    REPO/repo.json            thresholds and expiry periods (a RepoConfig)
    REPO/keys/                signers.json + local private keys (mode 600); never served
    REPO/public/metadata/     1.root.json, root.json, N.targets.json, N.snapshot.json, timestamp.json
    REPO/public/targets/      models/NAME/VERSION/<sha256>.FILE, channels/<sha256>.CHANNEL.json

Only ``public/`` is served, by ``edgeship ship serve`` or by any static web server or object store.
Consistent snapshots are on: every metadata version and every target file has its own name, so
publishing never rewrites a file a device may be downloading, and the only file replaced in place is
``timestamp.json`` (written last, atomically).

A channel is a small signed target file ``channels/NAME.json`` mapping model names to the target
path of their current release; devices read it through TUF like any other target.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any, ClassVar

from edgeship.core import atomic
from edgeship.core.config import Config
from edgeship.core.errors import BadInput
from edgeship.ship.keys import ROLES, KeyStore

REPO_FILE = "repo.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class RepoConfig(Config):
    """Thresholds (signatures needed per role) and how long each role's metadata stays valid."""

    kind: ClassVar[str] = "tuf-repo"
    root_threshold: int = 1
    targets_threshold: int = 1
    snapshot_threshold: int = 1
    timestamp_threshold: int = 1
    root_expiry_days: float = 365.0
    targets_expiry_days: float = 90.0
    snapshot_expiry_days: float = 7.0
    timestamp_expiry_days: float = 1.0

    def validate(self) -> None:
        for role in ROLES:
            t = getattr(self, f"{role}_threshold")
            if not isinstance(t, int) or t < 1 or t > 16:
                raise BadInput(f"{role} threshold {t!r}: give an integer from 1 to 16")
            days = getattr(self, f"{role}_expiry_days")
            if not isinstance(days, int | float) or days <= 0:
                raise BadInput(f"{role} expiry {days!r} days: give a positive number of days")

    def threshold(self, role: str) -> int:
        return int(getattr(self, f"{role}_threshold"))

    def expiry(self, role: str) -> _dt.timedelta:
        return _dt.timedelta(days=float(getattr(self, f"{role}_expiry_days")))


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def _tuf() -> Any:
    from edgeship.core.registry import require

    require("tuf", "ship", "python-tuf")
    require("securesystemslib", "ship", "securesystemslib")
    import tuf.api.metadata as md

    return md


def check_name(what: str, value: str) -> str:
    if not NAME_RE.match(value or ""):
        raise BadInput(f"{what} {value!r}: use letters, digits, '.', '_' or '-' (at most 64, not starting "
                       "with '.' or '-')")
    return value


def _repository_base() -> type:
    from tuf.repository import Repository

    return Repository


class ShipRepository:
    """A TUF repository in a folder. Open an existing one with ``ShipRepository(path)``; make one with
    :func:`init_repo`. Edits go through python-tuf's ``Repository.edit`` protocol (``_TufRepo``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        cfg = self.path / REPO_FILE
        if not cfg.is_file():
            raise BadInput(f"{str(self.path)!r} is not an edgeship update repository (no {REPO_FILE}); "
                           f"create one with: edgeship ship init {self.path}")
        self.config = RepoConfig.load(cfg)
        self.keys = KeyStore(self.path / "keys")
        self.metadata_dir = self.path / "public" / "metadata"
        self.targets_dir = self.path / "public" / "targets"
        self._tuf = _make_tuf_repo(self)

    # -- reading ---------------------------------------------------------------------------------
    def current_version(self, role: str) -> int:
        """Highest version of ``role`` on disk (0 when none)."""
        if role == "timestamp":
            f = self.metadata_dir / "timestamp.json"
            return self.load(role).signed.version if f.is_file() else 0
        versions = [int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"*.{role}.json")
                    if p.name.split(".", 1)[0].isdigit()]
        return max(versions, default=0)

    def load(self, role: str, version: int | None = None) -> Any:
        md = _tuf()
        if role == "timestamp":
            f = self.metadata_dir / "timestamp.json"
        else:
            f = self.metadata_dir / f"{version or self.current_version(role)}.{role}.json"
        try:
            return md.Metadata.from_file(str(f))
        except Exception as exc:
            raise BadInput(f"cannot read {f}: {exc}; the repository is damaged — restore it from a backup") from None

    def root_bytes(self) -> bytes:
        return (self.metadata_dir / f"{self.current_version('root')}.root.json").read_bytes()

    def targets(self) -> dict[str, Any]:
        """Target path → TargetFile of the current targets metadata."""
        return dict(self.load("targets").signed.targets)

    def channel(self, name: str) -> dict[str, Any]:
        """The current content of ``channels/NAME.json`` (empty when the channel has no release yet)."""
        info = self.targets().get(f"channels/{name}.json")
        if info is None:
            return {"channel": name, "models": {}}
        return json.loads(self._target_file(info).read_bytes())

    def channels(self) -> list[str]:
        return sorted(p[len("channels/"):-len(".json")] for p in self.targets() if p.startswith("channels/"))

    def target_file(self, path: str) -> Path:
        """The file of the published target ``path`` (under its hash-prefixed name)."""
        from edgeship.core.errors import BadInput

        info = self.targets().get(path)
        if info is None:
            raise BadInput(f"{path!r} is not a target of the repository at {self.path}")
        return self._target_file(info)

    def _target_file(self, info: Any) -> Path:
        folder, _, base = info.path.rpartition("/")
        return self.targets_dir / folder / f"{info.hashes['sha256']}.{base}"

    # -- writing ---------------------------------------------------------------------------------
    def add_targets(self, files: dict[str, tuple[Path | bytes, dict[str, Any] | None]],
                    channel_updates: dict[str, dict[str, str]] | None = None) -> Any:
        """Copy files into ``public/targets`` under their hash-prefixed names, add them (and updated
        channel files) to targets metadata, then write new snapshot and timestamp versions.

        ``files`` maps target path → (source file or bytes, custom metadata).
        ``channel_updates`` maps channel → {model name: target path of its new release}.
        Returns the new targets metadata.
        """
        md = _tuf()
        new: dict[str, Any] = {}
        for target_path, (source, custom) in files.items():
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            new[target_path] = self._store(target_path, data, custom, md)
        for channel, models in (channel_updates or {}).items():
            check_name("channel", channel)
            index = self.channel(channel)
            index["models"].update(models)
            index["updated"] = _utcnow().isoformat()
            data = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
            new[f"channels/{channel}.json"] = self._store(f"channels/{channel}.json", data,
                                                          {"edgeship": {"kind": "channel"}}, md)
        with self._tuf.edit_targets() as targets:
            targets.targets.update(new)
        self.snapshot_and_timestamp()
        return self.load("targets")

    def remove_targets(self, paths: list[str]) -> None:
        """Withdraw targets (the files stay on disk for devices mid-download; metadata drops them)."""
        with self._tuf.edit_targets() as targets:
            for p in paths:
                targets.targets.pop(p, None)
        self.snapshot_and_timestamp()

    def _store(self, target_path: str, data: bytes, custom: dict[str, Any] | None, md: Any) -> Any:
        if target_path.startswith("/") or ".." in target_path.split("/"):
            raise BadInput(f"target path {target_path!r} must be relative without '..'")
        info = md.TargetFile.from_data(target_path, data, ["sha256"])
        if custom:
            info.unrecognized_fields["custom"] = custom
        out = self._target_file(info)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.is_file():
            atomic.write_bytes(out, data)
        return info

    def snapshot_and_timestamp(self) -> None:
        self._tuf.do_snapshot()
        self._tuf.do_timestamp()

    def refresh(self, roles: tuple[str, ...] = ("timestamp",)) -> dict[str, int]:
        """Re-sign ``roles`` with fresh expiry dates (cron this for the timestamp); returns new versions."""
        for role in ("targets", "snapshot", "timestamp"):
            if role in roles:
                with self._tuf.edit(role):
                    pass  # close() bumps the version and the expiry and re-signs
                if role == "targets":
                    self._tuf.do_snapshot(force="snapshot" not in roles)
                    self._tuf.do_timestamp(force="timestamp" not in roles)
                elif role == "snapshot":
                    self._tuf.do_timestamp(force="timestamp" not in roles)
        return {r: self.current_version(r) for r in roles}

    def rotate_key(self, role: str, uri: str | None = None, public_key: Any = None) -> str:
        """Replace every key of ``role`` by one new key (generated here, or given by URI + public key).

        The new root is signed by the old root keys and the new ones, so devices follow the chain;
        metadata of the rotated role is re-signed at once with the new key. Returns the new key id.
        """
        if role not in ROLES:
            raise BadInput(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if self.config.threshold(role) != 1:
            raise BadInput(f"{role} has threshold {self.config.threshold(role)}: rotate with add-key/revoke-key "
                           "so the threshold stays met")
        old = self.load("root").signed.roles[role].keyids
        key = self.keys.generate(role) if public_key is None else public_key
        if public_key is not None:
            self.keys.add(public_key, uri or "", role)
        with self._tuf.edit_root() as root:
            for keyid in list(old):
                root.revoke_key(keyid, role)
            root.add_key(key, role)
        for keyid in old:
            if keyid != key.keyid:
                self.keys.retire(keyid, role)
        if role != "root":
            self.refresh(tuple(r for r in ("targets", "snapshot", "timestamp")
                               if ROLES.index(r) >= ROLES.index(role)))
        return key.keyid

    def add_key(self, role: str, uri: str, public_key: Any) -> None:
        """Let an external key (KMS/HSM, or a colleague's file key) sign ``role`` too."""
        self.keys.add(public_key, uri, role)
        with self._tuf.edit_root() as root:
            root.add_key(public_key, role)

    def keyid_for(self, role: str, prefix: str) -> str:
        """The one key id of ``role`` starting with ``prefix``."""
        keyids = [k for k in self.load("root").signed.roles[role].keyids if k.startswith(prefix)]
        if len(keyids) != 1:
            raise BadInput(f"key {prefix!r} matches {len(keyids)} keys of {role}; give a longer prefix")
        return keyids[0]

    def revoke_key(self, role: str, keyid: str) -> None:
        root = self.load("root").signed
        keyids = root.roles[role].keyids
        if keyid not in keyids:
            raise BadInput(f"key {keyid[:12]} does not sign {role}; keys: {', '.join(k[:12] for k in keyids)}")
        if len(keyids) - 1 < self.config.threshold(role):
            raise BadInput(f"revoking {keyid[:12]} would leave {role} below its threshold "
                           f"{self.config.threshold(role)}; add a key first (edgeship ship add-key)")
        with self._tuf.edit_root() as root:
            root.revoke_key(keyid, role)
        self.keys.retire(keyid, role)
        if role != "root":
            self.refresh(tuple(r for r in ("targets", "snapshot", "timestamp")
                               if ROLES.index(r) >= ROLES.index(role)))

    def summary(self) -> dict[str, Any]:
        root = self.load("root").signed
        out: dict[str, Any] = {"path": str(self.path), "roles": {}, "channels": {}}
        for role in ROLES:
            m = self.load(role).signed
            out["roles"][role] = {"version": m.version, "expires": m.expires.isoformat(),
                                  "threshold": root.roles[role].threshold,
                                  "keys": [k[:12] for k in root.roles[role].keyids]}
        for ch in self.channels():
            out["channels"][ch] = self.channel(ch)["models"]
        out["targets"] = len(self.targets())
        return out


def _make_tuf_repo(ship: ShipRepository) -> Any:
    """python-tuf's Repository over our folder: open() reads the newest version of a role, close()
    bumps version and expiry, signs with the role's keys and writes atomically."""
    md = _tuf()
    base = _repository_base()

    class _TufRepo(base):  # type: ignore[misc, valid-type]
        def open(self, role: str) -> Any:
            if ship.current_version(role) == 0:
                signed = {"root": md.Root, "targets": md.Targets, "snapshot": md.Snapshot,
                          "timestamp": md.Timestamp}[role]()
                signed.version = 0  # close() makes it version 1
                if role == "root":
                    signed.consistent_snapshot = True
                return md.Metadata(signed)
            return ship.load(role)

        def close(self, role: str, metadata: Any) -> None:
            prev_root_keys: list[str] = []
            if role == "root" and ship.current_version("root") > 0:
                prev = ship.load("root").signed
                prev_root_keys = list(prev.roles["root"].keyids)
            metadata.signed.version += 1
            metadata.signed.expires = _utcnow() + ship.config.expiry(role)
            metadata.signatures.clear()
            root = metadata.signed if role == "root" else ship.load("root").signed
            keyids = list(dict.fromkeys(list(root.roles[role].keyids) + prev_root_keys))
            signed = 0
            for keyid in keyids:
                if not ship.keys.has(keyid):
                    continue  # a key held elsewhere (offline); its owner adds a signature with sign()
                metadata.sign(ship.keys.signer(keyid), append=True)
                signed += 1
            if signed < root.roles[role].threshold:
                raise BadInput(f"only {signed} of the {root.roles[role].threshold} signatures {role} needs are "
                               "available here; add the missing keys' URIs with: edgeship ship add-key")
            _write_metadata(ship.metadata_dir, role, metadata)

        @property
        def targets_infos(self) -> dict[str, Any]:
            return {"targets.json": md.MetaFile(ship.current_version("targets"))}

        @property
        def snapshot_info(self) -> Any:
            return md.MetaFile(ship.current_version("snapshot"))

    return _TufRepo()


def _write_metadata(folder: Path, role: str, metadata: Any) -> None:
    from tuf.api.serialization.json import JSONSerializer

    data = metadata.to_bytes(JSONSerializer(compact=False))
    if role == "timestamp":
        atomic.write_bytes(folder / "timestamp.json", data)
        return
    atomic.write_bytes(folder / f"{metadata.signed.version}.{role}.json", data)
    if role == "root":  # the unversioned copy is what devices are provisioned with
        atomic.write_bytes(folder / "root.json", data)


def init_repo(path: str | Path, config: RepoConfig | None = None, keys_per_role: dict[str, int] | None = None,
              external_keys: dict[str, list[tuple[str, Any]]] | None = None) -> ShipRepository:
    """Create keys and version-1 metadata for every top-level role in an empty folder.

    Each role gets ``max(threshold, keys_per_role[role])`` keys generated here, plus any
    ``external_keys[role]`` given as (private-key URI, public key) pairs (KMS/HSM keys).
    """
    config = config or RepoConfig()
    p = Path(path)
    if (p / REPO_FILE).exists():
        raise BadInput(f"{str(p)!r} is already a repository; use another folder or edit it with ship commands")
    if p.exists() and any(p.iterdir()):
        raise BadInput(f"{str(p)!r} is not empty; give a new or empty folder")
    _tuf()
    (p / "public" / "metadata").mkdir(parents=True, exist_ok=True)
    (p / "public" / "targets").mkdir(parents=True, exist_ok=True)
    atomic.write_json(p / REPO_FILE, config.to_dict())
    repo = ShipRepository(p)
    root_keys: dict[str, list[Any]] = {}
    for role in ROLES:
        n = max(config.threshold(role), (keys_per_role or {}).get(role, 1))
        ext = (external_keys or {}).get(role, [])
        for uri, key in ext:
            repo.keys.add(key, uri, role)
        root_keys[role] = [key for _, key in ext] + [repo.keys.generate(role) for _ in range(max(0, n - len(ext)))]
    with repo._tuf.edit_root() as root:
        for role, keys in root_keys.items():
            for key in keys:
                root.add_key(key, role)
            root.roles[role].threshold = config.threshold(role)
    with repo._tuf.edit_targets():
        pass
    repo.snapshot_and_timestamp()
    return repo
