"""``data:sentences[:calib|:test]``: real English sentences taken from the docstrings of a fixed list
of standard-library modules (parsed, never imported), including very short ones, which are the
worst cases for quantized text encoders. The splits are disjoint, and each sentence is tokenised
alone (``zoo/text.py``): with the model source's tokenizer when there is one, else MiniLM's.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import sysconfig
from pathlib import Path

from edgeship.core.artifact import IOSpec
from edgeship.core.data import Dataset, register_data
from edgeship.core.errors import BadInput
from edgeship.zoo.data import Shapes, check_shapes, check_split
from edgeship.zoo.text import Tokenizer, text_dataset, token_inputs

# Standard-library modules whose docstrings give the sentences; read as source (ast), never
# imported, so nothing runs and the text is the same in every process of this Python version.
SENTENCE_MODULES = (
    "argparse", "ast", "bisect", "calendar", "codecs", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "difflib", "email.message", "enum", "fractions", "ftplib", "functools",
    "gettext", "gzip", "heapq", "http.client", "imaplib", "inspect", "ipaddress", "json", "locale", "logging",
    "mailbox", "os", "pathlib", "pickle", "pprint", "queue", "random", "sched", "selectors", "shlex", "shutil",
    "smtplib", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "tokenize", "traceback", "typing", "unittest.case", "urllib.parse", "uuid", "warnings", "wave", "weakref",
    "webbrowser", "zipfile", "zipimport",
)
SENTENCES_LONG = 360  # 4 words or more, 20-160 characters
SENTENCES_SHORT = 40  # 1-3 words ("Deprecated.", "Read a line."): the hardest inputs for INT8 encoders
SENTENCE_SPLITS = ("calib", "test")
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
# A plain word: letters only, capitalised at most on its first letter (no identifiers such as
# SequenceMatcher or ALL_CAPS), possibly hyphenated or with an apostrophe; single letters only a/A/I.
_PLAIN_WORD = re.compile(r"^(?:[A-Za-z][a-z]+(?:['-][a-z]+)*|[aAI])[,;:]?$")


def _stdlib_file(module: str) -> Path:
    base = Path(sysconfig.get_paths()["stdlib"]) / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise BadInput(f"data:sentences needs the standard library's source for {module!r} (not found under "
                   f"{base.parent}); use a Python installation that ships its .py files")


def file_docstrings(path: Path) -> list[str]:
    """The module, class and function docstrings of a Python file, read as source (nothing runs),
    breadth-first in source order (deterministic); none for a file that does not parse."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError):
        return []
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                docs.append(doc)
    return docs


def prose_sentences(doc: str) -> list[str]:
    """Sentences of the prose paragraphs of a docstring (code, lists and tables are skipped)."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        if any(line[:1].isspace() or line.lstrip().startswith((">>>", "...", "-", "*", "|", ":", "="))
               for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        out.extend(s.strip() for s in _SENTENCE_END.split(text))
    return out


def _is_plain(sentence: str) -> bool:
    """Capitalised, ends like a sentence, plain words only (no identifiers, numbers or markup)."""
    if len(sentence) < 2 or sentence[-1] not in ".!?" or not sentence[0].isupper():
        return False
    words = sentence[:-1].split()
    return bool(words) and all(_PLAIN_WORD.match(w) for w in words)


@functools.lru_cache(maxsize=1)
def sentence_splits() -> dict[str, tuple[str, ...]]:
    """{"calib": (...), "test": (...)}: disjoint, each half short and half long sentences alike.

    Sentences are ordered by their sha256 (stable across processes and hash seeds, and it mixes
    the modules); the long and the short ones alternate between the two splits separately so both
    get the same share of short inputs.
    """
    long_, short = set(), set()
    for module in SENTENCE_MODULES:
        for doc in file_docstrings(_stdlib_file(module)):
            for s in prose_sentences(doc):
                if not _is_plain(s):
                    continue
                words = len(s.split())
                if words <= 3:
                    short.add(s)
                elif words >= 4 and 20 <= len(s) <= 160:
                    long_.add(s)

    def stable(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    picked_long = sorted(long_, key=stable)[:SENTENCES_LONG]
    picked_short = sorted(short, key=stable)[:SENTENCES_SHORT]
    if len(picked_long) < SENTENCES_LONG or len(picked_short) < SENTENCES_SHORT:
        raise BadInput(f"data:sentences found only {len(picked_long)} long and {len(picked_short)} short "
                       f"sentences in this Python's standard library (need {SENTENCES_LONG} and {SENTENCES_SHORT})")
    splits: dict[str, list[str]] = {s: [] for s in SENTENCE_SPLITS}
    for group in (picked_long, picked_short):
        for i, s in enumerate(group):
            splits[SENTENCE_SPLITS[i % 2]].append(s)
    # Interleave short ones among the long ones so a --limit still sees a few short sentences.
    return {name: tuple(_interleave(texts)) for name, texts in splits.items()}


def _interleave(texts: list[str]) -> list[str]:
    short = [t for t in texts if len(t.split()) <= 3]
    long_ = [t for t in texts if len(t.split()) > 3]
    step = max(1, len(long_) // max(1, len(short)))
    out: list[str] = []
    for i, s in enumerate(short):
        out.extend(long_[i * step:(i + 1) * step])
        out.append(s)
    out.extend(long_[len(short) * step:])
    return out


@register_data("sentences", f"{SENTENCES_LONG + SENTENCES_SHORT} real English sentences from standard-library "
               "docstrings (some of 1-3 words), tokenised one at a time with the model's tokenizer (MiniLM's for an "
               "ONNX file); calib and test are disjoint", splits=SENTENCE_SPLITS, default_split="test", text=True)
def sentences(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None,
              tokenizer: Tokenizer | None = None) -> Dataset:
    split = check_split("sentences", split, SENTENCE_SPLITS, "test")
    shapes = check_shapes(io, shapes)
    token_inputs("data:sentences", io, shapes)  # refuse a model it does not fit before reading any text
    texts = list(sentence_splits()[split])
    if limit is not None:
        texts = texts[:limit]
    return text_dataset(f"data:sentences:{split}", texts, io, tokenizer, shapes, max_length=MAX_TOKENS,
                        info={"texts": texts, "short": sum(len(t.split()) <= 3 for t in texts)},
                        what="data:sentences")
