"""Every example in the README runs (the quick start's make targets excepted: CI runs those)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def _script(path: Path) -> str:
    """The doc's bash blocks as one script, as a reader would type them in one shell (make targets
    excepted); servers it starts in the background are stopped at the end."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", f'export PATH="{BIN}:$PATH"']
    for block in _blocks(path, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("make "):
                continue
            line = line.replace(".venv/bin/", f"{BIN}/").replace("python benchmarks/", f"python {ROOT}/benchmarks/")
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if _blocks(d, "bash") or _blocks(d, "python")], ids=lambda p: p.name)
def test_doc_examples_run(doc: Path, tmp_path: Path) -> None:
    proc = subprocess.run(["bash", "-c", _script(doc)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{doc.name}: exited {proc.returncode}:\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}"
    for block in _blocks(doc, "python"):
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{doc.name}: python example failed:\n{proc.stderr[-2000:]}"
