"""data:docstrings, the corpus for distilling sentence-embedding models: large, varied, never a test sentence."""

from __future__ import annotations

import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import load_data
from edgeship.core.errors import BadInput
from edgeship.zoo import docstrings as corpus
from edgeship.zoo.sentences import SENTENCE_MODULES, sentence_splits


@pytest.fixture(scope="module")
def stdlib_corpus(tmp_path_factory):
    # The standard library alone (seconds); site-packages adds ~115k more sentences the same way.
    return corpus.docstring_corpus(site_packages=False, cache=False)


def test_corpus_never_holds_a_test_sentence_and_starts_with_the_calib_split(stdlib_corpus):
    held_out = {corpus.fold(s) for split in ("select", "test") for s in sentence_splits()[split]}
    assert not held_out & {corpus.fold(s) for s in stdlib_corpus}
    calib = list(sentence_splits()["calib"])
    assert stdlib_corpus[:len(calib)] == calib
    folded = [corpus.fold(s) for s in stdlib_corpus]
    assert len(folded) == len(set(folded))  # deduplicated under case and whitespace folding


def test_corpus_is_large_varied_prose(stdlib_corpus):
    assert len(stdlib_corpus) > 5000
    words = [len(s.split()) for s in stdlib_corpus]
    assert sum(w <= 3 for w in words) > 200 and sum(w >= 10 for w in words) > 2000  # short ones too
    # after the calibration texts (every kind, code identifiers included): docstring prose only
    found = stdlib_corpus[len(sentence_splits()["calib"]):]
    assert all(corpus.MIN_CHARS <= len(s) <= corpus.MAX_CHARS for s in found)
    assert not any("_" in s or "()" in s for s in found)  # no code


def test_modules_of_data_sentences_are_not_read(tmp_path):
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    modules = {m for m, _ in corpus.python_files(root, SENTENCE_MODULES)}
    assert "json" not in modules and "json.decoder" not in modules and "email.message" not in modules
    assert "email.utils" in modules and "heapq" not in modules and "hashlib" in modules
    assert not any(m.startswith(("test.", "idlelib")) for m in modules)


def test_fold_and_prose_rules():
    assert corpus.fold("  Return the  Value. ") == "return the value."
    assert corpus.is_prose("Deprecated.") and corpus.is_prose("Return the list of offsets.")
    assert not corpus.is_prose("Call foo_bar() first.") and not corpus.is_prose("x = y[0]")
    assert not corpus.is_prose("a" * 300)


def test_cache_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    first = corpus.docstring_corpus(site_packages=False)
    files = list((tmp_path / "corpus").glob("docstrings-*.txt"))
    assert len(files) == 1
    assert corpus.docstring_corpus(site_packages=False) == first


BERT = IOSpec(tuple(TensorSpec(n, "int64", ("b", "s")) for n in ("input_ids", "attention_mask", "token_type_ids")),
              (TensorSpec("out", "float32", ()),))


def test_data_docstrings_is_registered_and_tokenised_for_the_model(monkeypatch):
    """Any command reads it (check, quantize --calib, compress --data): MiniLM's tokenizer without a source."""
    monkeypatch.setattr(corpus, "docstring_corpus", lambda site_packages: ["Deprecated.", "Return the value.", "Hi."])
    ds = load_data("data:docstrings", BERT, limit=2)
    assert ds.name == "data:docstrings" and len(ds) == 2
    assert ds.samples[0]["input_ids"][0, 0] == 101 and ds.samples[0]["input_ids"].shape[0] == 1
    assert ds.info["tokenizer"].startswith("all-MiniLM-L6-v2")


def test_data_docstrings_refuses_a_model_it_does_not_fit_before_reading_anything(monkeypatch):
    def never(site_packages):
        raise AssertionError("the corpus was built for a model it cannot feed")

    monkeypatch.setattr(corpus, "docstring_corpus", never)
    image = IOSpec((TensorSpec("input", "float32", ("b", 3, 8, 8)),), (TensorSpec("out", "float32", ()),))
    with pytest.raises(BadInput, match="data:docstrings gives BERT token inputs"):
        load_data("data:docstrings", image)
    with pytest.raises(BadInput, match="no splits"):
        load_data("data:docstrings:train", BERT)
