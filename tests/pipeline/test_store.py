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


def test_fingerprint_covers_the_package_and_library_versions():
    fp = store.code_fingerprint()
    assert len(fp) == 16 and fp == store.code_fingerprint()
    assert "onnxruntime" in store.RESULT_LIBRARIES
