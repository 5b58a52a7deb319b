"""``data:sentences[:calib|:select|:test]``: the kinds of text a sentence encoder is sent in use,
built offline and deterministically from text that ships with Python and its wheels.

Kinds (``SENTENCE_KINDS``, with how many of each every split gets):

- ``statement`` / ``short-doc``: English prose sentences from the docstrings of a fixed list of
  standard-library modules (parsed, never imported), long ones and 1-3 word ones ("Deprecated.");
- ``paragraph``: long prose paragraphs of the Python reference manual (``pydoc_data.topics``);
- ``word`` / ``two-words``: single words across frequency bands of a word count over those texts
  and Faker's list of common English words, in the cases people type them; word pairs from prose;
- ``reply``: greetings and short replies ("ok", "thx", "see you tomorrow"), some with a name;
- ``question`` / ``chat``: everyday questions and statements from templates filled with generated
  names, places, dates, products and numbers;
- ``name`` / ``place`` / ``number``: people's names and addresses of many locales (Faker, seeded,
  some in non-Latin scripts), dates, times, prices, phone numbers, order ids;
- ``product`` / ``business``: product-like phrases ("Blue cotton t-shirt, size M") and company slogans;
- ``code``: identifiers, dotted names, paths, URLs and e-mail addresses.

``calib`` (calibration ranges), ``select`` (choosing among variants: mixed precision, searches) and
``test`` (the held-out verdict) are disjoint: every text is in one split only (case and spaces
folded), and the templated kinds split by template, so a test question never shares its wording with
a calibration one. Each text is tokenised alone (``zoo/text.py``): with the model source's tokenizer
when there is one, else MiniLM's; the data set's ``info`` holds each text's kind and the length
distribution in tokens.
"""

from __future__ import annotations

import ast
import collections
import functools
import hashlib
import itertools
import json
import re
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeship.core.artifact import IOSpec
from edgeship.core.data import Dataset, register_data
from edgeship.core.errors import BadInput
from edgeship.zoo.data import Shapes, check_shapes, check_split, length_distribution
from edgeship.zoo.text import Tokenizer, text_dataset, token_inputs

# Standard-library modules whose docstrings give the prose; read as source (ast), never imported,
# so nothing runs and the text is the same in every process of this Python version.
SENTENCE_MODULES = (
    "argparse", "ast", "bisect", "calendar", "codecs", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "difflib", "email.message", "enum", "fractions", "ftplib", "functools",
    "gettext", "gzip", "heapq", "http.client", "imaplib", "inspect", "ipaddress", "json", "locale", "logging",
    "mailbox", "os", "pathlib", "pickle", "pprint", "queue", "random", "sched", "selectors", "shlex", "shutil",
    "smtplib", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "tokenize", "traceback", "typing", "unittest.case", "urllib.parse", "uuid", "warnings", "wave", "weakref",
    "webbrowser", "zipfile", "zipimport",
)
SENTENCE_SPLITS = ("calib", "select", "test")
# texts of each kind per split (each split gets the same mix)
SENTENCE_KINDS: dict[str, int] = {
    "statement": 100, "short-doc": 12, "paragraph": 12, "word": 30, "two-words": 15, "reply": 35,
    "question": 30, "chat": 20, "name": 15, "place": 15, "number": 25, "product": 15, "business": 5, "code": 20,
}
SHORT_WORDS = 3  # a text of at most this many words is "short": the hardest inputs for INT8 encoders
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
FAKER_SEED = 20261201
# locales of generated names and places: mostly Latin script, some not (users send those too);
# it_IT is left out: its city names come from a set, in an order that changes with the hash seed
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "sv_SE", "pt_BR", "nl_NL", "pl_PL", "tr_TR", "en_IN",
           "ja_JP", "ru_RU", "zh_CN", "ko_KR")

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
# A plain word: letters only, capitalised at most on its first letter (no identifiers such as
# SequenceMatcher or ALL_CAPS), possibly hyphenated or with an apostrophe; single letters only a/A/I.
_PLAIN_WORD = re.compile(r"^(?:[A-Za-z][a-z]+(?:['-][a-z]+)*|[aAI])[,;:]?$")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


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


def prose_paragraphs(doc: str) -> list[str]:
    """The prose paragraphs of a docstring or manual page, each on one line (code, lists, tables,
    headings and indented blocks are skipped)."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        if not lines or any(line[:1].isspace() or line.lstrip().startswith((">>>", "...", "-", "*", "|", ":", "=", "+"))
                            for line in lines):
            continue
        out.append(" ".join(line.strip() for line in lines))
    return out


def prose_sentences(doc: str) -> list[str]:
    """Sentences of the prose paragraphs of a docstring (code, lists and tables are skipped)."""
    return [s.strip() for text in prose_paragraphs(doc) for s in _SENTENCE_END.split(text)]


def _is_plain(sentence: str) -> bool:
    """Capitalised, ends like a sentence, plain words only (no identifiers, numbers or markup)."""
    if len(sentence) < 2 or sentence[-1] not in ".!?" or not sentence[0].isupper():
        return False
    words = sentence[:-1].split()
    return bool(words) and all(_PLAIN_WORD.match(w) for w in words)


def fold(text: str) -> str:
    """The key two texts are the same under: lower case, single spaces (the tokenizer is uncased)."""
    return " ".join(text.lower().split())


def _stable(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- raw material ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _module_docs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(docstrings of SENTENCE_MODULES, names defined in them: functions, classes, constants)."""
    docs: list[str] = []
    names: list[str] = []
    for module in SENTENCE_MODULES:
        path = _stdlib_file(module)
        docs.extend(file_docstrings(path))
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and len(node.name) > 3:
                names.append(f"{module}.{node.name}" if len(names) % 4 == 0 else node.name)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id.isupper() and len(node.targets[0].id) > 3:
                names.append(node.targets[0].id)
    return tuple(docs), tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=1)
def manual_paragraphs() -> tuple[str, ...]:
    """Prose paragraphs of 40-200 words from the Python reference manual's topics (pydoc_data)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise BadInput("data:sentences needs the standard library's pydoc_data (the reference manual's topics); "
                       "use a Python installation that ships it") from None
    out = []
    for key in sorted(topics):
        for para in prose_paragraphs(topics[key]):
            if 40 <= len(para.split()) <= 200 and para[:1].isupper() and para.endswith(".") and "*" not in para:
                out.append(para)
    return tuple(dict.fromkeys(out))


def _faker(locale: str, seed: int) -> Any:
    from edgeship.core.registry import require

    faker = require("faker", "core", "Faker (the names, places and numbers of data:sentences)")
    fake = faker.Faker(locale)
    fake.seed_instance(seed)
    return fake


@functools.lru_cache(maxsize=1)
def word_frequencies() -> tuple[tuple[str, int], ...]:
    """(word, count) over the docstrings and the manual, most frequent first (ties alphabetically):
    the word-frequency list the ``word`` kind draws its frequency bands from (kept in the user cache
    folder: see :func:`_through_cache`)."""
    def parse(raw: Any) -> tuple[tuple[str, int], ...] | None:
        return tuple((str(w), int(n)) for w, n in raw) or None

    return _through_cache("word-frequencies", _count_words, parse)


def _count_words() -> tuple[tuple[str, int], ...]:
    docs, _ = _module_docs()
    counts: collections.Counter[str] = collections.Counter()
    for text in (*docs, *manual_paragraphs()):
        for para in prose_paragraphs(text):
            counts.update(w for w in _WORD.findall(para.lower()) if len(w) > 1 or w in ("a", "i"))
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# Greetings and short replies as people type them (our own list; split between the three splits).
REPLIES = (
    "hi", "Hi!", "hello", "Hello there", "hey", "hey!", "good morning", "Good morning!", "good night", "Good evening",
    "thanks", "Thanks!", "thank you", "Thank you so much!", "thx", "ty", "ok", "OK", "okay", "Okay.", "k", "kk", "sure",
    "Sure thing", "yes", "Yes.", "yeah", "yep", "no", "No.", "nope", "maybe", "lol", "haha", "cool", "great", "Great!",
    "awesome", "sounds good", "see you", "see you tomorrow", "bye", "Bye!", "later", "np", "no problem",
    "you're welcome", "sorry", "my bad", "got it", "I agree", "me too", "not really", "why?", "what?", "huh?", "wow",
    "nice one", "congrats!", "happy birthday!", "good luck", "take care", "I'm fine, thanks", "how are you?",
    "what's up?", "yo", "cheers", "perfect", "done", "on my way", "brb", "ttyl", "omg", "idk", "please", "yes please",
    "no thanks", "of course", "absolutely", "definitely not", "hmm", "fine", "it works", "it doesn't work", "help",
    "stop", "cancel", "next", "go back", "again", "one more", "hello world", ":)", "?", "!!!", "...",
    "good afternoon", "welcome back", "nice to meet you", "long time no see", "talk soon", "call me",
    "text me later", "miss you", "love it", "not sure", "I don't know", "let me check", "will do", "agreed",
    "exactly", "right", "true", "false", "correct", "wrong", "never mind", "all good", "same here", "any update?",
    "ping", "test", "testing 1 2 3", "Merci", "Danke", "gracias", "ciao", "👍", "😂", "❤️", "ok 👍",
)
REPLY_WITH_NAME = ("Hi {first}!", "Thanks, {first}", "Good morning {first}", "hey {first}", "Bye {first}, see you!",
                   "Congrats {first}!", "Happy birthday {first}!", "Hello {first}, how are you?")

QUESTIONS = (
    "What's the weather like in {city} today?", "How do I reset my password?", "Where is the nearest {place}?",
    "Can you recommend a good {thing}?", "What time does the {place} open on {day}?",
    "How much is a train ticket to {city}?", "Is {first} available on {day}?", "Who won the game last night?",
    "What does {word} mean?", "How do you spell {word}?", "How long does it take to get to {city} by car?",
    "Can I return the {item} without a receipt?", "When will order {order} arrive?", "Why is my {device} so slow?",
    "What's the capital of {country}?", "Do you ship to {country}?", "What is {a} plus {b}?",
    "Is it going to rain on {day}?", "Where can I buy a {item}?", "How do I cancel my subscription?",
    "Which {thing} is best for beginners?", "What is the difference between {word} and {word2}?",
    "Could you send me the invoice for {month}?", "What is the phone number of {company}?",
    "Is there parking near {street}?", "How many calories are in a {food}?", "Can I pay with {payment}?",
    "What are your opening hours?", "Does the {item} come in {color}?", "How do I connect my {device} to wifi?",
    "Who is {name}?", "Are there flights from {city} to {city2} on {day}?", "How do I get to {street}?",
    "What's a good {food} recipe for dinner?", "Is the {place} open on {month} {dom}?",
    "When is the next bus to {city}?", "Can I change my booking to {day}?", "What's the exchange rate to {currency}?",
    "how to fix {device} not charging", "best {thing} under {price}", "{city} hotels near the airport",
    "is {word} a real word", "why did my payment fail?", "where did I park",
)
CHAT = (
    "I'll be there at {time}.", "My flight lands at {time} on {day}.", "The meeting moved to {day} at {time}.",
    "Please call {first} back at {phone}.", "I ordered a {item} but got the wrong size.",
    "The {device} stopped working after the update.", "We're out of {food}, can you grab some?",
    "Dinner at {first}'s place on {day}.", "I paid {price} for this.", "My address is {street_address}.",
    "Running late, be there in {minutes} minutes.", "The package was delivered to {street}.",
    "I live in {city} now.", "Remind me to call {first} tomorrow.", "Set an alarm for {time}.",
    "Book a table for {n} at {time}.", "Send {price} to {first}.", "My order number is {order}.",
    "I can't log in to my account.", "The {item} arrived broken.", "Let's meet at the {place} near {street}.",
    "Add {food} to the shopping list.", "I love the new {item}!", "My birthday is on {month} {dom}.",
    "The train to {city} is delayed again.", "Turn off the lights in the {room}.", "Play some {genre} music.",
    "It's {temp} degrees outside.", "I need a {thing} for my trip to {country}.", "Thanks for the {item}, {first}!",
)
PRODUCTS = (
    "{color} {material} {item}", "{material} {item}, size {size}", "{item} pack of {n}", "{brand} {item} {model}",
    "{adjective} {item} for {audience}", "{item} {capacity}", "{color} {item} with {feature}",
    "{brand} {device} {model} {storage}", "{adjective} {material} {item} ({color})", "Set of {n} {material} {item}s",
    "{item} - {color}, {size}", "{brand} {item}, {capacity}, {color}",
)
ITEMS = ("t-shirt", "hoodie", "water bottle", "backpack", "phone case", "desk lamp", "coffee mug", "running shoes",
         "yoga mat", "notebook", "charger cable", "office chair", "frying pan", "umbrella", "wallet", "sunglasses",
         "headphones", "keyboard", "pillow", "towel", "jacket", "watch strap", "lunch box", "plant pot", "scarf")
MATERIALS = ("cotton", "stainless steel", "leather", "bamboo", "ceramic", "wool", "silicone", "oak", "linen",
             "recycled plastic", "glass", "aluminium")
ADJECTIVES = ("lightweight", "waterproof", "wireless", "foldable", "organic", "vintage", "ergonomic", "compact",
              "heavy-duty", "premium", "eco-friendly", "adjustable")
AUDIENCES = ("kids", "women", "men", "travel", "the office", "runners", "beginners", "dogs", "cats")
FEATURES = ("zip pocket", "USB-C port", "noise cancelling", "LED light", "magnetic lid", "non-slip base")
BRANDS = ("Acme", "Nordic Home", "UrbanFit", "Zenith", "Bluebird", "Orion", "Kestrel", "Maple & Co")
DEVICES = ("phone", "laptop", "printer", "router", "smart watch", "tablet", "TV", "headset", "camera")
PLACES = ("pharmacy", "train station", "ATM", "coffee shop", "supermarket", "post office", "hospital", "gym",
          "library", "gas station", "bakery", "museum")
THINGS = ("laptop", "book", "restaurant", "camera", "hiking trail", "podcast", "movie", "bike", "tent", "app")
FOODS = ("banana", "pizza", "avocado", "lasagna", "bagel", "curry", "salad", "croissant", "rice", "milk", "eggs")
PAYMENTS = ("Apple Pay", "a credit card", "PayPal", "cash", "bank transfer")
ROOMS = ("kitchen", "living room", "bedroom", "garage", "office")
GENRES = ("jazz", "rock", "classical", "lo-fi", "hip hop", "country")


class _Fill:
    """Values for the templates' fields, drawn from a seeded Faker and the lists above."""

    def __init__(self, seed: int) -> None:
        import random

        self.fake = _faker("en_US", seed)
        self.other = [_faker(loc, seed + i) for i, loc in enumerate(LOCALES)]
        self.rng = random.Random(seed)
        words = [w for w, n in word_frequencies()[:3000] if len(w) > 3]
        self.words = words

    def __getitem__(self, key: str) -> str:
        f, r = self.fake, self.rng
        base = key.rstrip("2")
        table: dict[str, Callable[[], Any]] = {
            "city": lambda: r.choice(self.other).city(), "place": lambda: r.choice(PLACES),
            "thing": lambda: r.choice(THINGS), "day": lambda: _moment(f).strftime("%A"),
            "first": lambda: r.choice(self.other).first_name(),
            "name": lambda: r.choice(self.other).name(), "word": lambda: r.choice(self.words),
            "item": lambda: r.choice(ITEMS), "order": lambda: f"#{f.random_int(10000, 999999)}",
            "device": lambda: r.choice(DEVICES), "country": f.country, "a": lambda: str(f.random_int(2, 999)),
            "b": lambda: str(f.random_int(2, 99)), "month": lambda: _moment(f).strftime("%B"), "company": f.company,
            "street": f.street_name, "street_address": f.street_address, "food": lambda: r.choice(FOODS),
            "payment": lambda: r.choice(PAYMENTS), "color": lambda: f.color_name().lower(),
            "dom": lambda: str(f.random_int(1, 28)), "currency": f.currency_name,
            "price": lambda: r.choice(("$", "€", "£")) + f"{f.random_int(1, 400)}" + r.choice(("", ".99", ".50")),
            "time": lambda: r.choice((f"{f.random_int(1, 12)}{r.choice(('am', 'pm', ' pm', ':30'))}",
                                      _moment(f).strftime("%H:%M"))),
            "phone": f.phone_number, "minutes": lambda: str(r.choice((5, 10, 15, 20, 30))),
            "n": lambda: str(f.random_int(2, 12)), "room": lambda: r.choice(ROOMS), "genre": lambda: r.choice(GENRES),
            "temp": lambda: str(f.random_int(-10, 38)), "material": lambda: r.choice(MATERIALS),
            "size": lambda: r.choice(("S", "M", "L", "XL", "42", "10.5", "one size")),
            "brand": lambda: r.choice(BRANDS), "model": lambda: f"{f.random_uppercase_letter()}{f.random_int(1, 900)}",
            "adjective": lambda: r.choice(ADJECTIVES), "audience": lambda: r.choice(AUDIENCES),
            "capacity": lambda: r.choice(("500 ml", "750ml", "1.5 L", "20 oz", "2 kg", "64 GB")),
            "feature": lambda: r.choice(FEATURES), "storage": lambda: r.choice(("128GB", "256 GB", "1TB")),
        }
        return str(table[base]())


def _moment(fake: Any) -> Any:
    """A date and time between fixed bounds: Faker's own date methods end at *now*, which would make
    the texts change from day to day."""
    import datetime

    utc = datetime.UTC  # not the machine's time zone
    return fake.date_time_between_dates(datetime.datetime(1990, 1, 1, tzinfo=utc),
                                        datetime.datetime(2030, 12, 31, tzinfo=utc), tzinfo=utc)


def _templated(templates: tuple[str, ...], fill: _Fill, per_template: int) -> list[tuple[int, str]]:
    """(template index, text) with ``per_template`` fillings of each template."""
    out = []
    for i, tpl in enumerate(templates):
        for _ in range(per_template):
            out.append((i, tpl.format_map(fill)))
    return out


def _cased(word: str, i: int) -> str:
    """Words as people type them: mostly lower case, some capitalised, shouted or with punctuation."""
    return (word, word, word.capitalize(), word.capitalize() + ".", word.upper(), word + "?")[i % 6]


# -- the kinds ---------------------------------------------------------------------------------------------
# Each kind yields (group, text): texts of one group always land in the same split (a template's
# fillings, the words of one frequency band are spread across splits by the text alone).
KindTexts = Iterator[tuple[str, str]]


def _docstring_sentences() -> tuple[list[str], list[str]]:
    docs, _ = _module_docs()
    long_, short = set(), set()
    for doc in docs:
        for s in prose_sentences(doc):
            if not _is_plain(s):
                continue
            words = len(s.split())
            if words <= SHORT_WORDS:
                short.add(s)
            elif 20 <= len(s) <= 160:
                long_.add(s)
    return sorted(long_, key=_stable), sorted(short, key=_stable)


def _kind_statement() -> KindTexts:
    return ((s, s) for s in _docstring_sentences()[0])


def _kind_short_doc() -> KindTexts:
    return ((s, s) for s in _docstring_sentences()[1])


def _kind_paragraph() -> KindTexts:
    return ((p, p) for p in manual_paragraphs())


def _kind_word() -> KindTexts:
    from edgeship.core.registry import require

    freq = word_frequencies()
    # bands of the frequency list: the 100 most frequent words, then 100-1000, 1000-5000, the rare rest
    bands = [freq[:100], freq[100:1000], freq[1000:5000], freq[5000:]]
    faker_words = require("faker", "core", "Faker").providers.lorem.en_US.Provider.word_list
    bands.append(tuple((w, 0) for w in faker_words))
    for b, band in enumerate(bands):
        picked = sorted((w for w, _ in band if w.isalpha()), key=_stable)[:60]
        for i, w in enumerate(picked):
            yield w, _cased(w, i + b)


def _kind_two_words() -> KindTexts:
    pairs = set()
    for s in _docstring_sentences()[0]:
        words = s.rstrip(".!?").split()
        for a, b in itertools.pairwise(words):
            if a.isalpha() and b.isalpha() and len(a) > 3 and len(b) > 3:
                pairs.add(f"{a.lower()} {b.lower()}")
    return ((p, p) for p in sorted(pairs, key=_stable)[:300])


def _kind_reply() -> KindTexts:
    fill = _Fill(FAKER_SEED + 1)
    yield from ((r, r) for r in REPLIES)
    for i, tpl in _templated(REPLY_WITH_NAME, fill, 4):
        yield f"reply-template-{i}", tpl


def _kind_question() -> KindTexts:
    return ((f"question-template-{i}", t) for i, t in _templated(QUESTIONS, _Fill(FAKER_SEED + 2), 4))


def _kind_chat() -> KindTexts:
    return ((f"chat-template-{i}", t) for i, t in _templated(CHAT, _Fill(FAKER_SEED + 3), 4))


def _kind_product() -> KindTexts:
    fill = _Fill(FAKER_SEED + 4)
    for i, t in _templated(PRODUCTS, fill, 10):
        yield f"product-template-{i}", t[:1].upper() + t[1:]


def _kind_business() -> KindTexts:
    fake = _faker("en_US", FAKER_SEED + 5)
    for i in range(60):
        text = (fake.catch_phrase(), fake.bs(), fake.company(), fake.job())[i % 4]
        yield text, text


def _kind_name() -> KindTexts:
    for i, loc in enumerate(LOCALES):
        fake = _faker(loc, FAKER_SEED + 10 + i)
        for j in range(6):
            text = (fake.name(), fake.first_name(), fake.last_name(), fake.name(), fake.name(), fake.first_name())[j]
            yield text, text


def _kind_place() -> KindTexts:
    for i, loc in enumerate(LOCALES):
        fake = _faker(loc, FAKER_SEED + 40 + i)
        for j in range(6):
            text = (fake.city(), fake.address().replace("\n", ", "), fake.street_address(), fake.country(),
                    f"{fake.city()}, {fake.country()}", fake.postcode())[j]
            yield text, text


def _kind_number() -> KindTexts:
    fake = _faker("en_US", FAKER_SEED + 70)
    eu = _faker("de_DE", FAKER_SEED + 71)
    makers: tuple[Callable[[], str], ...] = (
        lambda: f"{_moment(fake):%Y-%m-%d}", lambda: f"{_moment(fake):%d/%m/%Y}", lambda: f"{_moment(fake):%B %d, %Y}",
        lambda: f"{_moment(fake):%a %d %b}", lambda: f"{_moment(fake):%H:%M}", lambda: f"{_moment(fake):%I:%M %p}",
        lambda: str(fake.random_int(0, 100)), lambda: f"{fake.random_int(1000, 99999999):,}",
        lambda: f"{fake.pyfloat(left_digits=2, right_digits=3)}",
        lambda: f"${fake.random_int(1, 999)}.{fake.random_int(0, 99):02d}",
        lambda: eu.pricetag(), lambda: f"{fake.random_int(1, 100)}%", lambda: fake.phone_number(),
        lambda: f"ORD-{fake.random_int(10000, 99999)}", lambda: fake.postcode(), lambda: fake.ipv4(),
        lambda: f"{fake.random_int(1, 12)}/{fake.random_int(1, 28)}", lambda: f"{_moment(fake):%Y}",
        lambda: f"{fake.random_int(1, 20)} kg", lambda: f"{fake.random_int(1, 300)} km/h",
    )
    for i in range(len(makers) * 8):
        text = makers[i % len(makers)]()
        yield text, text


def _kind_code() -> KindTexts:
    _, names = _module_docs()
    fake = _faker("en_US", FAKER_SEED + 80)
    for name in sorted(names, key=_stable)[:240]:
        yield name, name
    for i in range(60):
        text = (fake.file_path(depth=2), fake.url(), fake.email(), fake.user_name(), fake.uuid4()[:8],
                f"{fake.word()}_{fake.word()}.py")[i % 6]
        yield text, text


KIND_TEXTS: dict[str, Callable[[], KindTexts]] = {
    "statement": _kind_statement, "short-doc": _kind_short_doc, "paragraph": _kind_paragraph, "word": _kind_word,
    "two-words": _kind_two_words, "reply": _kind_reply, "question": _kind_question, "chat": _kind_chat,
    "name": _kind_name, "place": _kind_place, "number": _kind_number, "product": _kind_product,
    "business": _kind_business, "code": _kind_code,
}


def _split_kind(kind: str, need: int, seen: set[str]) -> dict[str, list[str]]:
    """``need`` texts of ``kind`` per split. Groups (a template, or the text itself) are dealt to the
    splits in the order of their sha256, so the same group never lands in two splits; texts already
    in ``seen`` (folded: taken by this kind or an earlier one) are skipped."""
    groups: dict[str, list[str]] = {}
    for group, text in KIND_TEXTS[kind]():
        text = " ".join(text.split())
        key = fold(text)
        if not text or key in seen:
            continue
        seen.add(key)
        groups.setdefault(group, []).append(text)
    order = sorted(groups, key=lambda g: _stable(f"{kind}:{g}"))
    out: dict[str, list[str]] = {s: [] for s in SENTENCE_SPLITS}
    for i, group in enumerate(order):
        out[SENTENCE_SPLITS[i % len(SENTENCE_SPLITS)]].extend(groups[group])
    for split, texts in out.items():
        if len(texts) < need:
            raise BadInput(f"data:sentences found only {len(texts)} {kind} texts for its {split} split (needs {need}); "
                           "this Python's standard library or the installed Faker differ from the ones it was built on")
        out[split] = sorted(texts, key=lambda t: _stable(f"{kind}:{t}"))[:need]
    return out


@functools.lru_cache(maxsize=1)
def sentence_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """{split: ((kind, text), ...)}: the kinds interleaved in proportion (so the first N of a split
    have the same mix as the whole), stable across processes and hash seeds (kept in the user cache
    folder: see :func:`_through_cache`)."""
    want = sum(SENTENCE_KINDS.values())

    def parse(raw: Any) -> dict[str, tuple[tuple[str, str], ...]] | None:
        table = {split: tuple((str(kind), str(text)) for kind, text in raw[split]) for split in SENTENCE_SPLITS}
        return table if all(len(rows) == want for rows in table.values()) else None

    return _through_cache("sentences", _build_sentence_table, parse)


def _through_cache(name: str, build: Callable[[], Any], parse: Callable[[Any], Any]) -> Any:
    """``build()``'s result, kept as JSON in the user cache folder (``zoo.base.through_cache``) under a
    key of everything the texts are made from: this module's code, the Python build and its library
    files, Faker's version. Building parses some 60 standard-library files and runs Faker (about 9 s
    per process otherwise); a file ``parse`` refuses (or says None of) is rebuilt."""
    from edgeship.zoo.base import through_cache

    def write(value: Any, path: Path) -> None:
        path.write_text(json.dumps(value), encoding="utf-8")

    return through_cache(_cache_file(name), lambda path: parse(json.loads(path.read_text(encoding="utf-8"))),
                         build, write)


def _cache_file(name: str) -> Path:
    from edgeship.zoo.base import cache_dir

    return cache_dir() / "data" / f"{name}-{_cache_key()}.json"


@functools.lru_cache(maxsize=1)
def _cache_key() -> str:
    import sys

    from edgeship.core.registry import installed_version

    key = hashlib.sha256(Path(__file__).read_bytes())
    key.update(f"{sys.version}|{sys.platform}|{installed_version('faker')}".encode())
    for module in SENTENCE_MODULES:  # a patched standard library at the same version
        st = _stdlib_file(module).stat()
        key.update(f"{module}:{st.st_size}:{st.st_mtime_ns}".encode())
    return key.hexdigest()[:16]


def _build_sentence_table() -> dict[str, tuple[tuple[str, str], ...]]:
    seen: set[str] = set()
    per_kind = {kind: _split_kind(kind, need, seen) for kind, need in SENTENCE_KINDS.items()}
    table: dict[str, tuple[tuple[str, str], ...]] = {}
    for split in SENTENCE_SPLITS:
        keyed = []
        for kind, need in SENTENCE_KINDS.items():
            for i, text in enumerate(per_kind[kind][split]):
                keyed.append(((i + 0.5) / need, kind, text))
        keyed.sort(key=lambda k: (k[0], list(SENTENCE_KINDS).index(k[1])))
        table[split] = tuple((kind, text) for _, kind, text in keyed)
    return table


def sentence_splits() -> dict[str, tuple[str, ...]]:
    """{"calib": (...), "select": (...), "test": (...)}: the texts of each split, disjoint."""
    return {split: tuple(t for _, t in rows) for split, rows in sentence_table().items()}


@register_data("sentences", f"{sum(SENTENCE_KINDS.values())} texts per split of the kinds a sentence encoder is sent "
               "(prose, paragraphs, single words, greetings and replies, questions, names, places, numbers and dates, "
               "products, code identifiers), tokenised one at a time with the model's tokenizer (MiniLM's for an ONNX "
               "file); calib, select and test are disjoint", splits=SENTENCE_SPLITS, default_split="test", text=True)
def sentences(io: IOSpec, split: str | None = None, limit: int | None = None, shapes: Shapes | None = None,
              tokenizer: Tokenizer | None = None) -> Dataset:
    split = check_split("sentences", split, SENTENCE_SPLITS, "test")
    shapes = check_shapes(io, shapes)
    token_inputs("data:sentences", io, shapes)  # refuse a model it does not fit before reading any text
    rows = list(sentence_table()[split])
    if limit is not None:
        rows = rows[:limit]
    texts = [t for _, t in rows]
    kinds = [k for k, _ in rows]
    ds = text_dataset(f"data:sentences:{split}", texts, io, tokenizer, shapes, max_length=MAX_TOKENS,
                      info={"texts": texts, "kinds": kinds, "short": sum(len(t.split()) <= SHORT_WORDS for t in texts),
                            "kind_counts": dict(collections.Counter(kinds))},
                      what="data:sentences")
    ds.ids = [f"#{i} {kind}: {_clip(text)}" for i, (kind, text) in enumerate(rows)]
    ds.info["distribution"] = length_distribution([next(iter(s.values())).shape[-1] for s in ds.samples], "tokens")
    return ds


def _clip(text: str, n: int = 48) -> str:
    return repr(text if len(text) <= n else text[: n - 1] + "…")
