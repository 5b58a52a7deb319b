"""A/B model slots on the device and the atomic pointer that says which one serves.

Layout of a slot directory::

    DIR/agent.lock       held (flock) by the one agent working on DIR
    DIR/active.json      the pointer: {"active": {slot, path, version, sha256, ...}, "previous": {...}}
    DIR/state.json       last update's outcome, targets that failed here, probation of a new model
    DIR/slots/a/, b/     model + golden file + manifest.json of one release each
    DIR/downloads/       partial downloads (resumed after an interruption)
    DIR/metadata/        the device's trusted TUF metadata

The pointer is the only thing a serving process reads. It is replaced atomically (temporary file,
fsync, ``os.replace``, fsync of the folder) and only ever names a slot whose files were fully written
and fsynced before, so a crash at any moment leaves the device serving either the old or the new
model, never a half-written one and never none.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeship.core.errors import BadInput

POINTER = "active.json"
STATE = "state.json"
SLOTS = ("a", "b")


def plain_file_name(name: str) -> bool:
    """A file name with no folder part: safe to join to a folder on a publisher or a device."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes, before_replace: Any = None) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new content, never a mix:
    temporary file + fsync + os.replace + fsync of the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class SlotDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def ensure(self) -> SlotDir:
        for sub in ("slots/a", "slots/b", "downloads", "metadata"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        return self

    def remove_stale_temps(self) -> None:
        """Temporary pointer/state files left by a process killed mid-write (call under the lock)."""
        for pattern in (f".{POINTER}.*", f".{STATE}.*"):
            for f in self.path.glob(pattern):
                f.unlink(missing_ok=True)

    # -- lock ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on the slot directory; a second agent gets a one-line BadInput. The lock is
        held on a read-only descriptor (a disk can still be remounted read-only under it); the
        holder's pid is written beside, best effort."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        lock_file = self.path / "agent.lock"
        fd = os.open(lock_file, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise BadInput(f"another agent (pid {holder}) is updating {self.path}; "
                                   "run one agent per slot directory") from None
                raise
            with contextlib.suppress(OSError), open(lock_file, "w") as fh:
                fh.write(str(os.getpid()))
            yield
        finally:
            os.close(fd)  # closing releases the flock, also when the process is killed

    # -- pointer ---------------------------------------------------------------------------------
    def pointer(self) -> dict[str, Any]:
        f = self.path / POINTER
        if not f.is_file():
            return {"active": None, "previous": None}
        return json.loads(f.read_text())

    def write_pointer(self, pointer: dict[str, Any], before_replace: Any = None) -> None:
        write_durable(self.path / POINTER, (json.dumps(pointer, indent=2) + "\n").encode(), before_replace)

    def active(self) -> dict[str, Any] | None:
        return self.pointer().get("active")

    def active_model(self) -> Path:
        act = self.active()
        if not act:
            raise BadInput(f"no model is active in {self.path}; run: edgeship agent run --once ...")
        return self.path / act["path"]

    def inactive_slot(self) -> str:
        act = self.active()
        return "b" if act and act["slot"] == "a" else "a"

    def slot_path(self, slot: str) -> Path:
        return self.path / "slots" / slot

    def manifest(self, slot: str) -> dict[str, Any] | None:
        f = self.slot_path(slot) / "manifest.json"
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError:
            return None

    def slot_intact(self, slot: str) -> bool:
        """True when the slot's manifest exists and its files have their recorded sha256 (the model
        file's is the release's ``sha256`` unless the manifest lists every file under ``files``)."""
        from edgeship.core.artifact import file_sha256

        m = self.manifest(slot)
        if not m:
            return False
        files = m.get("files") or {m["model"]: m["sha256"]}
        folder = self.slot_path(slot)
        return all((folder / name).is_file() and file_sha256(folder / name) == sha for name, sha in files.items())

    # -- staging ---------------------------------------------------------------------------------
    def stage(self, slot: str, files: dict[str, Path], manifest: dict[str, Any], checkpoint: Any = None,
              archive: Path | None = None) -> Path:
        """Copy ``files`` (name → source) into ``slot``, fsync each, write the manifest last. An
        ``archive`` (a folder model's tar) is unpacked into the folder the manifest's ``model``
        names, and every file it held is listed with its sha256 under the manifest's ``files``."""
        folder = self.slot_path(slot)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if archive is not None:
            unpacked = unpack_model(archive, folder, manifest["model"], checkpoint)
            manifest = {**manifest, "files": unpacked}
        for name, src in files.items():
            dst = folder / name
            with open(src, "rb") as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                if checkpoint:
                    checkpoint("stage")
                fout.flush()
                if checkpoint:
                    checkpoint("fsync")
                os.fsync(fout.fileno())
        write_durable(folder / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
        fsync_dir(folder)
        return folder

    def entry(self, slot: str) -> dict[str, Any]:
        m = self.manifest(slot)
        if not m:
            raise BadInput(f"slot {slot} in {self.path} has no manifest")
        return {"slot": slot, "path": f"slots/{slot}/{m['model']}", **{k: m.get(k) for k in
                ("target", "name", "version", "sha256", "golden", "runtime")}}

    def switch(self, slot: str, before_replace: Any = None, probation: bool = True) -> dict[str, Any]:
        """Make ``slot`` active; the slot that was active becomes ``previous``."""
        old = self.pointer()
        new = {"active": {**self.entry(slot), "probation": probation}, "previous": old.get("active")}
        if new["previous"]:
            new["previous"].pop("probation", None)
        self.write_pointer(new, before_replace)
        return new

    def forget_previous(self) -> None:
        """Before the inactive slot is overwritten it stops being a rollback target."""
        ptr = self.pointer()
        if ptr.get("previous"):
            ptr["previous"] = None
            self.write_pointer(ptr)

    def rollback(self) -> dict[str, Any] | None:
        """Re-activate the previous slot when it is intact; returns the new pointer or None."""
        ptr = self.pointer()
        prev = ptr.get("previous")
        if not prev or not self.slot_intact(prev["slot"]):
            return None
        new = {"active": prev, "previous": ptr.get("active")}
        if new["previous"]:
            new["previous"] = {**new["previous"], "probation": False, "failed": True}
        self.write_pointer(new)
        return new

    def confirm(self) -> None:
        ptr = self.pointer()
        if ptr.get("active") and ptr["active"].get("probation"):
            ptr["active"]["probation"] = False
            self.write_pointer(ptr)

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        f = self.path / STATE
        if not f.is_file():
            return {"failed": {}, "last_update": None, "crashes": 0}
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError:
            return {"failed": {}, "last_update": None, "crashes": 0}

    def write_state(self, state: dict[str, Any]) -> None:
        write_durable(self.path / STATE, (json.dumps(state, indent=2) + "\n").encode())

    def status(self) -> dict[str, Any]:
        ptr = self.pointer()
        st = self.state()
        return {"slot_dir": str(self.path), "active": ptr.get("active"), "previous": ptr.get("previous"),
                "last_update": st.get("last_update"), "failed_targets": sorted(st.get("failed", {}))}


def unpack_model(archive: Path, folder: Path, top: str, checkpoint: Any = None) -> dict[str, str]:
    """Unpack a folder model's tar into ``folder``: plain files and folders under ``top/`` only (no
    links, no absolute paths, no ``..``), each file fsynced; their sha256 by relative path."""
    import tarfile

    from edgeship.core.artifact import file_sha256

    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts or \
                        not parts or parts[0] != top:
                    raise BadInput(f"archive member {m.name!r} is not a plain file or folder under {top}/")
            tar.extractall(folder, members=members, filter="data")
    except tarfile.TarError as exc:
        raise BadInput(f"the archive does not unpack: {exc}") from None
    hashes: dict[str, str] = {}
    for p in sorted((folder / top).rglob("*")):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
            hashes[str(p.relative_to(folder))] = file_sha256(p)
            if checkpoint:
                checkpoint("stage")
    for d in sorted({p.parent for p in (folder / top).rglob("*")} | {folder / top}):
        fsync_dir(d)
    return hashes


def active_model(slot_dir: str | Path) -> Path:
    """The model file a serving process should load now (read through the atomic pointer)."""
    return SlotDir(slot_dir).active_model()


def record_crash(slot_dir: str | Path, detail: str = "") -> None:
    """Called by a serving process when the active model crashed; the agent rolls back a model still
    in probation at its next cycle. Appends one line (O_APPEND writes are atomic for short lines)."""
    path = Path(slot_dir) / "crashes.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps({"pid": os.getpid(), "detail": detail[:200]}) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
