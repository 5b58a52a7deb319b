"""A large English training corpus for distilling sentence-embedding models, built offline from
docstrings of the installed Python code (standard library, optionally site-packages).

``data:sentences`` (the held-out set the MiniLM gates use) is read from the docstrings of
``SENTENCE_MODULES``; this corpus never reads those modules, and it drops every sentence that
equals a held-out one after case and whitespace folding (the MiniLM tokenizer is uncased), so no
test sentence is ever trained on. Sentences keep their natural variety: one-word lines
("Deprecated."), short phrases and long ones (up to ``MAX_CHARS``), because the worst held-out
cosines come from the shortest inputs.

The corpus is cached as a text file (one sentence per line) under the edgeship cache, keyed by the
Python version, the sources read and this builder's version. Registered as ``data:docstrings``
(standard library and site-packages, about 120k sentences), tokenised one sentence at a time by the
model source's tokenizer (``zoo/text.py``).
"""

from __future__ import annotations

import hashlib
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from edgeship.core.artifact import IOSpec
from edgeship.core.data import Dataset, register_data
from edgeship.zoo.base import cache_dir
from edgeship.zoo.data import Shapes, check_shapes, no_split
from edgeship.zoo.sentences import SENTENCE_MODULES, file_docstrings, prose_sentences, sentence_splits
from edgeship.zoo.text import Tokenizer, text_dataset, token_inputs

CORPUS_VERSION = 2  # part of the cache key: change it whenever the extraction rules change
MIN_CHARS = 2
MAX_CHARS = 200  # ~50 tokens: the test sentences are at most 160 characters
# Directories that hold tests, vendored copies or generated code rather than prose docstrings.
SKIP_DIRS = {"test", "tests", "testing", "idlelib", "lib2to3", "ensurepip", "__pycache__", "_vendor", "vendor",
             "site-packages", "turtledemo", "tkinter"}
_WORD = re.compile(r"[A-Za-z]{2,}")
_CODEISH = re.compile(r"[_{}\[\]<>=`\\$#@|~^]|::|\(\)|\w\.\w|\w\(")


def fold(sentence: str) -> str:
    """The key two sentences are the same under: lower case, single spaces (the tokenizer is uncased)."""
    return " ".join(sentence.lower().split())


def is_prose(sentence: str) -> bool:
    """Mostly words, no code (identifiers with underscores, calls, brackets, markup)."""
    if not MIN_CHARS <= len(sentence) <= MAX_CHARS or _CODEISH.search(sentence):
        return False
    words = sentence.split()
    return bool(words) and sum(bool(_WORD.search(w)) for w in words) >= 0.8 * len(words)


def python_files(root: Path, skip_modules: Iterable[str] = ()) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for the .py files under ``root``, skipping test/vendored folders and
    modules (and packages) named in ``skip_modules``."""
    skip = set(skip_modules)
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if not parts or any(p in SKIP_DIRS or p.startswith(".") for p in rel.parts[:-1]):
            continue
        module = ".".join(parts)
        if any(module == s or module.startswith(s + ".") for s in skip):
            continue
        yield module, f


def sentences_from(files: Iterable[Path], exclude: set[str]) -> list[str]:
    """Distinct prose sentences of the files' docstrings, none equal (folded) to one in ``exclude``."""
    seen = set(exclude)
    out: list[str] = []
    for f in files:
        for doc in file_docstrings(f):
            for s in prose_sentences(doc):
                key = fold(s)
                if key in seen or not is_prose(s):
                    continue
                seen.add(key)
                out.append(s)
    return out


def default_roots(site_packages: bool) -> list[Path]:
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"])]
    if site_packages:
        roots.append(Path(paths["purelib"]))
    return roots


def held_out_sentences() -> set[str]:
    """Folded data:sentences select and test texts: never trained on."""
    splits = sentence_splits()
    return {fold(s) for s in (*splits["select"], *splits["test"])}


def docstring_corpus(site_packages: bool = False, cache: bool = True) -> list[str]:
    """English sentences from installed docstrings (data:sentences' modules and test sentences left
    out), deduplicated, in a stable order; the calib split of data:sentences comes first."""
    roots = default_roots(site_packages)
    key = hashlib.sha256(repr((CORPUS_VERSION, sys.version, [str(r) for r in roots])).encode()).hexdigest()[:16]
    cached = _cache_file(key)
    if cache and cached.is_file():
        return cached.read_text(encoding="utf-8").splitlines()
    print("data:docstrings: reading docstrings of the installed Python code (cached after the first run)",
          file=sys.stderr)
    exclude = held_out_sentences()
    files: list[Path] = []
    for i, root in enumerate(roots):
        # the standard library: every module but data:sentences' own; site-packages: everything
        skip = SENTENCE_MODULES if i == 0 else ()
        files.extend(f for _, f in python_files(root, skip))
    calib = [s for s in sentence_splits()["calib"] if fold(s) not in exclude]
    found = sentences_from(files, exclude | {fold(s) for s in calib})
    corpus = calib + found
    if cache:
        from edgeship.core.atomic import atomic_path

        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            Path(tmp).write_text("\n".join(corpus) + "\n", encoding="utf-8")
    return corpus


def _cache_file(key: str) -> Path:
    return cache_dir() / "corpus" / f"docstrings-{key}.txt"


MAX_TOKENS = 128  # sentences are at most MAX_CHARS (~50 tokens): truncation is a safeguard only


@register_data("docstrings", "about 120k English sentences from docstrings of the installed Python code (built "
               "once in about 2 minutes, then cached), data:sentences:calib first, no data:sentences test sentence; "
               "training text, tokenised with the model's tokenizer (MiniLM's for an ONNX file)", text=True)
def docstrings(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None,
               tokenizer: Tokenizer | None = None) -> Dataset:
    no_split("docstrings", split)
    shapes = check_shapes(io, shapes)
    token_inputs("data:docstrings", io, shapes)  # refuse a model it does not fit before building the corpus
    texts = docstring_corpus(site_packages=True)
    return text_dataset("data:docstrings", texts[:limit] if limit else texts, io, tokenizer, shapes,
                        max_length=MAX_TOKENS, what="data:docstrings")
