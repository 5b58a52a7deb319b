"""RunStore: a step is reused only when its inputs, its files and the code that made it are unchanged."""

from __future__ import annotations

from pathlib import Path

from edgeship.pipeline import store
from edgeship.pipeline.store import RunStore


def _run(root: Path, calls: list[int]) -> dict:
    def fn() -> dict:
        calls.append(1)
        (root / "out.txt").write_text(f"run {len(calls)}")
        return {"n": len(calls)}

    return RunStore(root).step("make", {"input": "a"}, fn, files=lambda result: ["out.txt"])


def test_step_is_reused_until_the_code_changes(tmp_path, monkeypatch):
    calls: list[int] = []
    assert _run(tmp_path, calls)["n"] == 1
    assert _run(tmp_path, calls)["n"] == 1 and len(calls) == 1  # same inputs, same code: reused
    # another edgeship build or library version (the fingerprint is cached per process)
    monkeypatch.setattr(store, "code_fingerprint", lambda: "another-version")
    assert _run(tmp_path, calls)["n"] == 2 and len(calls) == 2


def test_fingerprint_changes_with_the_code_and_the_libraries(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code")
    libs = ("onnx",)
    base = store.fingerprint(pkg, libs)
    assert len(base) == 16 and base == store.fingerprint(pkg, libs)
    (pkg / "notes.txt").write_text("changed, still not code")
    assert store.fingerprint(pkg, libs) == base
    (pkg / "sub" / "b.py").write_text("y = 3\n")  # an edit anywhere in the package
    edited = store.fingerprint(pkg, libs)
    assert edited != base
    (pkg / "sub" / "b.py").rename(pkg / "b.py")  # same contents, another module
    assert store.fingerprint(pkg, libs) != edited
    # a library that is installed, and one that is not, each change it
    assert store.fingerprint(pkg, ("onnx", "numpy")) != store.fingerprint(pkg, libs)
    assert store.fingerprint(pkg, ("onnx", "no-such-library-xyz")) != store.fingerprint(pkg, libs)
    assert "onnxruntime" in store.RESULT_LIBRARIES and "torch" in store.RESULT_LIBRARIES
