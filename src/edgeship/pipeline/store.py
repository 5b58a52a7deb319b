"""``RunStore``: one run directory holds every step's output and result; re-running reuses a step
whose inputs (its key) are unchanged, whose files are still there, unmodified, and that the same
edgeship code and library versions produced."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.core import atomic
from edgeship.core.artifact import file_sha256
from edgeship.core.progress import status

# What else decides a step's result besides its inputs: edgeship's own code and the libraries that
# quantize, convert and run. A new version of either makes every step run again.
RESULT_LIBRARIES = ("onnx", "onnxruntime", "torch", "openvino", "nncf", "tensorflow", "onnx2tf", "executorch",
                    "coremltools", "optimum")


def fingerprint(package: Path, libraries: tuple[str, ...]) -> str:
    """A hash of the ``.py`` files under ``package`` (names and contents) and the installed versions of
    ``libraries`` (an absent one counts as absent)."""
    from importlib import metadata

    h = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    for lib in libraries:
        try:
            h.update(f"{lib}=={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib} absent".encode())
    return h.hexdigest()[:16]


@functools.cache
def code_fingerprint() -> str:
    """The fingerprint of edgeship's own source files and the libraries in RESULT_LIBRARIES (once per process)."""
    return fingerprint(Path(__file__).resolve().parents[1], RESULT_LIBRARIES)


def key_digest(key: dict[str, Any]) -> str:
    text = json.dumps({"step": key, "code": code_fingerprint()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.steps = self.root / "steps"
        self.steps.mkdir(parents=True, exist_ok=True)
        self.reused: list[str] = []
        self.ran: list[str] = []

    def path(self, name: str) -> Path:
        return self.root / name

    def step(self, name: str, key: dict[str, Any], fn: Callable[[], dict[str, Any]],
             files: Callable[[dict[str, Any]], list[str]] | None = None) -> dict[str, Any]:
        """Run ``fn`` unless a finished result with the same key exists. ``files`` lists, from a
        result, the run-dir-relative files it produced; a changed or missing file reruns the step."""
        record_path = self.steps / f"{name}.json"
        digest = key_digest(key)
        if record_path.is_file():
            try:
                record = json.loads(record_path.read_text())
            except json.JSONDecodeError:
                record = {}
            if record.get("key") == digest and self._files_intact(record):
                self.reused.append(name)
                status(f"  {name}: reused (unchanged)")
                return record["result"]
        t0 = time.perf_counter()
        status(f"  {name}: running ...")
        result = fn()
        took = time.perf_counter() - t0
        produced = files(result) if files else []
        record = {"key": digest, "key_detail": key, "seconds": round(took, 2), "result": result,
                  "files": {f: file_sha256(self.root / f) for f in produced if (self.root / f).exists()}}
        atomic.write_json(record_path, record)
        self.ran.append(name)
        status(f"  {name}: done in {took:.1f} s")
        return result

    def _files_intact(self, record: dict[str, Any]) -> bool:
        for rel, sha in record.get("files", {}).items():
            p = self.root / rel
            if not p.exists() or file_sha256(p) != sha:
                return False
        return True
