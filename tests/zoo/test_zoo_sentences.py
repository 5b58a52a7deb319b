"""data:sentences: real English sentences, split without overlap, tokenised alone, fitted to the inputs."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import load_data
from edgeship.core.errors import BadInput
from edgeship.zoo import sentences as zsentences


def _io(*inputs: tuple[str, str, tuple]) -> IOSpec:
    return IOSpec(tuple(TensorSpec(n, d, s) for n, d, s in inputs), (TensorSpec("out", "float32", ()),))


IMAGE_NCHW = _io(("input", "float32", ("batch", 3, 224, 224)))
BERT = _io(*((n, "int64", ("batch", "sequence")) for n in ("input_ids", "attention_mask", "token_type_ids")))


def _short(text: str) -> bool:
    return len(text.split()) <= 3


def test_sentences_are_disjoint_splits_of_every_kind_users_send() -> None:
    table = zsentences.sentence_table()
    assert tuple(table) == ("calib", "select", "test")
    folded = {split: {zsentences.fold(t) for _, t in rows} for split, rows in table.items()}
    for split, rows in table.items():
        assert len(folded[split]) == len(rows) == sum(zsentences.SENTENCE_KINDS.values())
        kinds = collections.Counter(k for k, _ in rows)
        assert kinds == collections.Counter(zsentences.SENTENCE_KINDS)
        texts = [t for _, t in rows]
        assert sum(_short(t) for t in texts) >= 100 and sum(len(t.split()) == 1 for t in texts) >= 40
        assert sum(len(t.split()) >= 8 for t in texts) > 50 and max(len(t.split()) for t in texts) >= 40
        assert any("?" in t for k, t in rows if k == "question") and any("_" in t for k, t in rows if k == "code")
        assert any(any(ord(c) > 0x2E80 for c in t) for k, t in rows if k in ("name", "place"))  # CJK scripts too
        assert any(any(c.isdigit() for c in t) for k, t in rows if k == "number")
        # the first texts already have the mix: a --limit still sees short and long ones
        head = [k for k, _ in rows[:30]]
        assert {"statement", "reply", "word", "question"} <= set(head)
    for a, b in (("calib", "select"), ("calib", "test"), ("select", "test")):
        assert not folded[a] & folded[b]


def test_templated_kinds_split_by_template() -> None:
    """A question's wording (its template) is in one split only: a test question is never a
    calibration question with other names filled in."""
    for kind in ("question", "chat", "product"):
        where: dict[str, set[str]] = {}
        texts = {split: {t for k, t in rows if k == kind} for split, rows in zsentences.sentence_table().items()}
        for group, text in zsentences.KIND_TEXTS[kind]():
            text = " ".join(text.split())
            for split, have in texts.items():
                if text in have:
                    where.setdefault(group, set()).add(split)
        assert len(where) >= 6 and all(len(splits) == 1 for splits in where.values())
        assert len(set().union(*where.values())) == 3


def test_sentences_do_not_depend_on_the_hash_seed(tmp_path) -> None:
    """Built afresh (an empty cache folder) under another hash seed and time zone: the same table."""
    code = ("import hashlib, json; from edgeship.zoo.sentences import sentence_splits; "
            "print(hashlib.sha256(json.dumps(sentence_splits()).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati", "EDGESHIP_CACHE": str(tmp_path)}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    fresh = {split: tuple(t for _, t in rows) for split, rows in zsentences._build_sentence_table().items()}
    assert other.stdout.strip() == hashlib.sha256(json.dumps(fresh).encode()).hexdigest()
    assert fresh == zsentences.sentence_splits()  # and what this process has (maybe from the cache)


def test_the_sentence_table_is_built_once_and_cached(tmp_path, monkeypatch) -> None:
    """Built in a process with an empty cache and written there; read back by the next; a damaged
    file (a write cut short) is rebuilt. The word frequencies (the probes' bands) likewise."""
    built, freq = zsentences.sentence_table(), zsentences.word_frequencies()
    calls = []

    def builder(value):
        def build():
            calls.append(1)
            return value
        return build

    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    monkeypatch.setattr(zsentences, "_build_sentence_table", builder(built))
    monkeypatch.setattr(zsentences, "_count_words", builder(freq))
    fresh = (zsentences.sentence_table, zsentences.word_frequencies)
    for fn in fresh:
        fn.cache_clear()
    try:
        assert zsentences.sentence_table() == built and zsentences.word_frequencies() == freq and len(calls) == 2
        path = zsentences._cache_file("sentences")
        assert path.is_file() and path.is_relative_to(tmp_path) and zsentences._cache_file("word-frequencies").is_file()
        for fn in fresh:
            fn.cache_clear()
        assert zsentences.sentence_table() == built and zsentences.word_frequencies() == freq and len(calls) == 2
        path.write_text('{"calib": [["word", "Yes"')
        zsentences.sentence_table.cache_clear()
        assert zsentences.sentence_table() == built and len(calls) == 3
        zsentences.sentence_table.cache_clear()
        assert zsentences.sentence_table() == built and len(calls) == 3  # the rebuilt file reads back
    finally:
        for fn in fresh:
            fn.cache_clear()


@pytest.fixture(scope="module")
def sentences_test():
    return load_data("data:sentences:test", BERT)


def test_sentences_are_tokenised_alone_at_natural_length(sentences_test) -> None:
    ds = sentences_test
    assert ds.info["texts"] == list(zsentences.sentence_splits()["test"]) and len(ds) == len(ds.info["texts"])
    lengths = []
    for sample in ds:
        ids = sample["input_ids"]
        assert ids.dtype == np.int64 and ids.shape[0] == 1 and set(sample) == set(BERT.input_names)
        assert ids[0, 0] == 101 and ids[0, -1] == 102  # [CLS] ... [SEP], no padding after it
        assert sample["attention_mask"].all() and not sample["token_type_ids"].any()
        lengths.append(ids.shape[1])
    for kind, n in zip(ds.info["kinds"], lengths):
        if kind == "short-doc":
            assert n <= 12  # 1-3 words
    assert min(lengths) == 3 and max(lengths) >= 100  # one-token words: [CLS] word [SEP]; manual paragraphs
    dist = ds.info["distribution"]
    assert dist["unit"] == "tokens" and dist["n"] == len(ds) and dist["min"] == 3 and dist["max"] == max(lengths)
    assert sum(dist["histogram"].values()) == len(ds) and dist["histogram"]["1-4"] >= 20
    assert len(ds.ids) == len(ds) and ds.ids[0].startswith("#0 ") and ds.info["kinds"][0] in ds.ids[0]
    from edgeship.zoo.minilm import tokenizer

    text = ds.info["texts"][0]
    assert tokenizer().decode(ds.samples[0]["input_ids"][0], skip_special_tokens=True) == \
        tokenizer().decode(tokenizer()(text)["input_ids"], skip_special_tokens=True)


def test_sentences_fixed_batch_for_benchmarks(sentences_test) -> None:
    b = sentences_test.batch(4, 32)
    assert set(b) == set(BERT.input_names) and all(v.shape == (4, 32) for v in b.values())
    assert (b["attention_mask"].sum(axis=1) < 32).any()  # short sentences are padded
    longest = sentences_test.batch(3)
    n = max(s["input_ids"].shape[1] for s in sentences_test.samples[:3])
    assert longest["input_ids"].shape == (3, n)
    wrapped = sentences_test.batch(len(sentences_test) + 2, 16)
    np.testing.assert_array_equal(wrapped["input_ids"][-1], wrapped["input_ids"][1])


def test_sentences_fit_the_model_inputs() -> None:
    two = load_data("data:sentences:calib", _io(("input_ids", "int32", ("b", "s")), ("attention_mask", "int32",
                                                                                    ("b", "s"))), limit=5)
    assert set(two.samples[0]) == {"input_ids", "attention_mask"} and two.samples[0]["input_ids"].dtype == np.int32
    assert two.info["texts"] == list(zsentences.sentence_splits()["calib"][:5])
    fixed = load_data("data:sentences", _io(("input_ids", "int64", (1, 32)), ("attention_mask", "int64", (1, 32))),
                      limit=6)
    assert all(s["input_ids"].shape == (1, 32) for s in fixed)
    assert fixed.batch(1)["input_ids"].shape == (1, 32)


@pytest.mark.parametrize("io, words", [
    (IMAGE_NCHW, "input_ids"),
    (_io(("input_ids", "int64", ("b", "s")), ("pixel_values", "float32", ("b", 3, 8, 8))), "pixel_values"),
    (_io(("input_ids", "float32", ("b", "s"))), "integer token ids"),
    (_io(("input_ids", "int64", ("b", "s", 4))), "3 dims"),
])
def test_sentences_refuse_models_they_do_not_fit(io: IOSpec, words: str) -> None:
    with pytest.raises(BadInput, match=words) as err:
        load_data("data:sentences", io)
    assert "\n" not in str(err.value)


def test_sentences_use_the_tokenizer_they_are_given() -> None:
    """A model source's own tokenizer (e.g. one with another vocabulary) tokenises the text."""

    class Letters:  # a tokenizer that is not a Hugging Face one: called one sentence at a time
        def __call__(self, text, return_tensors, truncation, max_length):
            ids = np.array([[1] + [ord(c) % 50 + 2 for c in text[:max_length - 2]]], dtype=np.int64)
            return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    io = _io(("input_ids", "int64", ("b", "s")), ("attention_mask", "int64", ("b", "s")))
    ds = load_data("data:sentences:calib", io, limit=3, tokenizer=Letters())
    texts = ds.info["texts"]
    assert ds.info["tokenizer"] == "Letters"
    assert [s["input_ids"].shape[1] for s in ds] == [len(t) + 1 for t in texts]
