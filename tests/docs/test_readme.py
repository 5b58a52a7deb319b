"""Every example in the README runs (the quick start's make targets excepted: CI runs those)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def _commands(path: Path) -> list[str]:
    cmds = []
    for block in _blocks(path, "bash"):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#") and not line.startswith("make "):
                cmds.append(line)
    return cmds


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if _commands(d) or _blocks(d, "python")], ids=lambda p: p.name)
def test_doc_examples_run(doc: Path, tmp_path: Path) -> None:
    """Commands run in order in one scratch folder, as a reader would type them."""
    for cmd in _commands(doc):
        argv = shlex.split(cmd.replace(".venv/bin/", f"{BIN}/"))
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{doc.name}: `{cmd}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    for block in _blocks(doc, "python"):
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{doc.name}: python example failed:\n{proc.stderr[-2000:]}"
