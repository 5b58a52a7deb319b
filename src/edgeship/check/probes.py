"""Stress probes: inputs at the edges of what a model is sent, built from its IO spec and task.

Held-out data says how a candidate does on inputs like the ones it was tuned on; the probes ask
where quantization breaks first. Families (each applies where it fits the model's inputs):

- ``text`` (BERT-like token inputs): the shortest inputs — special tokens only, single tokens from
  four bands of a word-frequency list and from three bands of the vocabulary, punctuation, digits,
  symbols and characters the vocabulary lacks — the longest input the tokenizer takes, and
  repeated tokens;
- ``image`` (one float image input with 3 channels): constant images (black, white, grey, colours),
  very dark, very bright, washed-out and low-contrast scenes, pixel noise, noise over a scene,
  strong colour casts and a pixel checkerboard, drawn from a seeded natural-looking (1/f) field and
  mapped into the model's input range (the calibration data's, else data:images' [-1, 1]);
- ``calibration-range`` (float inputs, with calibration data): inputs at the edges of the range
  the calibration saw — its per-element minimum and maximum, real samples with their contrast
  doubled within that range, and a mix of the two edges;
- ``io-spec`` (any model no other family fits): zeros, ones and large values in the IO spec's shapes.

``seed`` 0 gives the probes ``edgeship check`` judges by; a search (the mixed precision search,
OpenVINO's INT8 search) selects with ``seed`` 1, a disjoint set of the same families, so that the
check's probe verdict stays independent of what was selected on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput

Feeds = dict[str, np.ndarray]
Probe = tuple[str, str, Feeds]  # (kind, id, feeds)
CHECK_SEED = 0
SELECT_SEED = 1


@dataclasses.dataclass
class ProbeContext:
    io: IOSpec
    task: str = "other"
    tokenizer: Any = None  # the model source's tokenizer, else the default one of zoo/text.py
    calib: Dataset | None = None  # calibration data: its range gives the edges
    seed: int = CHECK_SEED
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ProbeSet:
    """Probe inputs with an id and a kind each, and the families and notes they came from."""

    samples: list[Feeds]
    ids: list[str]
    kinds: list[str]
    families: list[str]
    notes: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def to_dict(self) -> dict[str, Any]:
        return {"probes": len(self.samples), "families": self.families, "notes": self.notes,
                "kinds": {k: self.kinds.count(k) for k in dict.fromkeys(self.kinds)}}


@dataclasses.dataclass(frozen=True)
class ProbeFamily:
    name: str
    applies: Callable[[ProbeContext], bool]
    build: Callable[[ProbeContext], list[Probe]]  # a ProbeBuilder


FAMILIES: list[ProbeFamily] = []


ProbeBuilder = Callable[[ProbeContext], list[Probe]]


def probe_family(name: str, applies: Callable[[ProbeContext], bool]) -> Callable[[ProbeBuilder], ProbeBuilder]:
    """Decorator: a probe family, tried in the order registered."""

    def deco(fn: ProbeBuilder) -> ProbeBuilder:
        FAMILIES.append(ProbeFamily(name, applies, fn))
        return fn

    return deco


def build_probes(io: IOSpec, task: str = "other", *, tokenizer: Any = None, calib: Dataset | None = None,
                 seed: int = CHECK_SEED) -> ProbeSet:
    """The probes for a model with inputs ``io``: every family that fits, in order."""
    ctx = ProbeContext(io, task, tokenizer, calib, seed)
    samples, ids, kinds, families = [], [], [], []
    fitting = [f for f in FAMILIES if f.name != "io-spec" and f.applies(ctx)]
    fallback = [f for f in FAMILIES if f.name == "io-spec"]
    for family in fitting or fallback:
        built = family.build(ctx)
        if not built:
            continue
        families.append(family.name)
        for kind, pid, feeds in built:
            samples.append(feeds)
            ids.append(f"{family.name}/{pid}")
            kinds.append(kind)
    return ProbeSet(samples, ids, kinds, families, ctx.notes)


def _pick(items: list[Any] | tuple[Any, ...], seed: int, n: int) -> list[Any]:
    """``n`` of ``items``: the even positions for seed 0, the odd ones for seed 1 (disjoint sets)."""
    return list(items[seed % 2::2][:n])


# -- text --------------------------------------------------------------------------------------------------
def _is_text(ctx: ProbeContext) -> bool:
    from edgeship.zoo.text import token_inputs

    try:
        token_inputs("probes", ctx.io, {})
    except BadInput:
        return False
    return True


PUNCTUATION = (".", "?", "!", ",", "-", "...", "#", "@", "$", "%", "*", ":)", "???", "!!!", "/", "&")
SYMBOLS = ("0", "7", "42", "1999", "€", "👍", "ß", "中", "x", "é", "3.5", "100%")
UNKNOWN = ("ᚠᛇᚻ ᛒᛦᚦ", "🦜🦜🦜", "ꙮ", "⟁⟁")
REPEATED = (("the", 12), ("a", 12), ("ok", 60), ("yes", 60), ("!", 50), ("ha", 40), ("the", 1000), ("la", 1000))


@probe_family("text", _is_text)
def text_probes(ctx: ProbeContext) -> list[Probe]:
    from edgeship.zoo.sentences import manual_paragraphs, word_frequencies
    from edgeship.zoo.text import default_tokenizer, token_inputs, tokenize_each

    specs, seq = token_inputs("probes", ctx.io, {})
    tok, _ = default_tokenizer(ctx.tokenizer)
    max_length = min(int(getattr(tok, "model_max_length", 512) or 512), 512)
    texts: list[tuple[str, str, str]] = [("special-only", "special tokens only", "")]

    def one_token(word: str) -> bool:
        encode = getattr(tok, "encode", None)
        if encode is None:
            return True
        try:
            return len(encode(word, add_special_tokens=False)) == 1
        except TypeError:
            return True

    freq = [w for w, _ in word_frequencies() if w.isalpha()]
    bands = {"top-100": freq[:100], "100-1k": freq[100:1000], "1k-5k": freq[1000:5000], "rare": freq[5000:]}
    for band, words in bands.items():
        for w in _pick([w for w in words if one_token(w)], ctx.seed, 3):
            texts.append(("single-token", f"word {band} {w!r}", w))
    convert = getattr(tok, "convert_ids_to_tokens", None)
    vocab = int(getattr(tok, "vocab_size", 0) or 0)
    if convert is not None and vocab > 100:
        for name, (lo, hi) in {"vocab-low": (0.05, 0.15), "vocab-mid": (0.4, 0.5), "vocab-high": (0.85, 0.95)}.items():
            ids = range(int(vocab * lo), int(vocab * hi))
            tokens = [t for t in convert(list(ids)) if t.isalpha() and t.isascii()]
            for t in _pick(tokens[:: max(1, len(tokens) // 40)], ctx.seed, 2):
                texts.append(("single-token", f"{name} {t!r}", t))
    for p in _pick(PUNCTUATION, ctx.seed, 8):
        texts.append(("punctuation", repr(p), p))
    for p in _pick(SYMBOLS, ctx.seed, 6):
        texts.append(("symbol", repr(p), p))
    for p in _pick(UNKNOWN, ctx.seed, 2):
        texts.append(("unknown-chars", repr(p), p))
    for word, times in _pick(REPEATED, ctx.seed, 4):
        texts.append(("repeated", f"{word!r}×{times}", " ".join([word] * times)))
    paragraphs = list(manual_paragraphs())
    longest = " ".join(_pick(paragraphs, ctx.seed, 12))
    texts.append(("longest", f"{max_length} tokens of manual prose", longest))
    if seq is None:
        ctx.notes.append(f"text probes: 1 to {max_length} tokens")
    samples = tokenize_each(tok, [t for _, _, t in texts], specs, seq, max_length)
    return [(kind, pid, feeds) for (kind, pid, _), feeds in zip(texts, samples, strict=True)]


# -- images ------------------------------------------------------------------------------------------------
def _image_input(ctx: ProbeContext) -> tuple[TensorSpec, str, int, int] | None:
    if len(ctx.io.inputs) != 1 or np.dtype(ctx.io.inputs[0].dtype).kind != "f":
        return None
    from edgeship.zoo.images import image_layout

    spec = ctx.io.inputs[0]
    try:
        layout, h, w = image_layout(spec, tuple(spec.shape))
    except BadInput:
        return None
    return spec, layout, h, w


def natural_field(h: int, w: int, seed: int) -> np.ndarray:
    """A [h, w, 3] image in [0, 1] with a natural image's 1/f spectrum and mostly shared channels."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    out = []
    base = None
    for c in range(3):
        phase = rng.uniform(0, 2 * np.pi, (h, w))
        field = np.real(np.fft.ifft2(amp * np.exp(1j * phase)))
        base = field if base is None else base
        out.append(0.8 * base + 0.2 * field if c else field)
    img = np.stack(out, axis=-1)
    img = (img - img.min()) / max(1e-12, float(img.max() - img.min()))
    return img


def _input_range(ctx: ProbeContext, spec: TensorSpec, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (lo, hi) of the input: the calibration data's, else [-1, 1]."""
    if ctx.calib is not None and len(ctx.calib):
        x = np.concatenate([np.asarray(s[spec.name], dtype=np.float64) for s in ctx.calib.samples])
        axis = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
        return x.min(axis=axis), x.max(axis=axis)
    ctx.notes.append("image probes: input range assumed [-1, 1] (data:images' scaling); give calibration data to "
                     "probe the model's own range")
    return np.full(3, -1.0), np.full(3, 1.0)


@probe_family("image", lambda ctx: _image_input(ctx) is not None)
def image_probes(ctx: ProbeContext) -> list[Probe]:
    found = _image_input(ctx)
    assert found is not None
    spec, layout, h, w = found
    lo, hi = _input_range(ctx, spec, layout)
    rng = np.random.default_rng(1000 + ctx.seed)
    field = natural_field(h, w, 10 + ctx.seed)
    colour = rng.uniform(0, 1, 3)
    warm, cool = np.array([1.0, 0.45, 0.2]), np.array([0.2, 0.5, 1.0])
    checker = ((np.indices((h, w)).sum(axis=0) % 2)[..., None] * np.ones(3)).astype(np.float64)
    unit: list[tuple[str, str, np.ndarray]] = [
        ("constant", "black", np.zeros((h, w, 3))), ("constant", "white", np.ones((h, w, 3))),
        ("constant", "grey", np.full((h, w, 3), 0.5)),
        ("constant", f"colour {np.round(colour, 2).tolist()}", np.broadcast_to(colour, (h, w, 3)).copy()),
        ("very-dark", "scene at 4% light", field * 0.04),
        ("very-dark", "scene at 2% light with noise", np.clip(field * 0.02 + rng.normal(0, 0.01, (h, w, 3)), 0, 1)),
        ("very-bright", "washed-out scene", 1.0 - (1.0 - field) * 0.05),
        ("very-bright", "overexposed (clipped) scene", np.clip(field * 2.5, 0, 1)),
        ("low-contrast", "scene at 10% contrast", 0.45 + 0.1 * field),
        ("noisy", "uniform pixel noise", rng.uniform(0, 1, (h, w, 3))),
        ("noisy", "scene with heavy noise", np.clip(field + rng.normal(0, 0.25, (h, w, 3)), 0, 1)),
        ("colour-cast", "warm cast", field * warm), ("colour-cast", "blue cast", field * cool),
        ("colour-cast", "green cast", field * np.array([0.3, 1.0, 0.3])),
        ("pattern", "pixel checkerboard", checker),
    ]
    probes = []
    for kind, pid, u in unit:
        x = lo + u * (hi - lo)
        x = x.transpose(2, 0, 1)[None] if layout == "NCHW" else x[None]
        probes.append((kind, pid, {spec.name: np.ascontiguousarray(x, dtype=np.dtype(spec.dtype))}))
    return probes


# -- calibration range -------------------------------------------------------------------------------------
def _float_inputs(ctx: ProbeContext) -> bool:
    return bool(ctx.io.inputs) and all(np.dtype(i.dtype).kind == "f" for i in ctx.io.inputs if
                                       not i.dtype.startswith("onnx:"))


@probe_family("calibration-range", lambda ctx: ctx.calib is not None and len(ctx.calib) >= 2 and _float_inputs(ctx))
def calibration_range_probes(ctx: ProbeContext) -> list[Probe]:
    assert ctx.calib is not None
    samples = ctx.calib.samples
    names = ctx.io.input_names
    same_shape = all(all(s[n].shape == samples[0][n].shape for n in names) for s in samples)
    rng = np.random.default_rng(2000 + ctx.seed)
    if same_shape:
        stacked = {n: np.concatenate([np.asarray(s[n], dtype=np.float64) for s in samples]) for n in names}
        lo = {n: a.min(axis=0, keepdims=True) for n, a in stacked.items()}
        hi = {n: a.max(axis=0, keepdims=True) for n, a in stacked.items()}
        mean = {n: a.mean(axis=0, keepdims=True) for n, a in stacked.items()}
    else:  # samples of several shapes: the range over all elements
        flat = {n: np.concatenate([np.asarray(s[n], dtype=np.float64).ravel() for s in samples]) for n in names}
        lo = {n: np.array(a.min()) for n, a in flat.items()}
        hi = {n: np.array(a.max()) for n, a in flat.items()}
        mean = {n: np.array(a.mean()) for n, a in flat.items()}
        ctx.notes.append("calibration-range probes: samples of different shapes, so the range is over all elements")

    def cast(values: dict[str, np.ndarray], like: Feeds) -> Feeds:
        return {n: np.ascontiguousarray(np.broadcast_to(values[n], like[n].shape),
                                        dtype=np.dtype(next(i.dtype for i in ctx.io.inputs if i.name == n)))
                for n in names}

    base = samples[int(rng.integers(0, len(samples)))]
    probes: list[Probe] = [("range-edge", "per-element minimum", cast(lo, base)),
                           ("range-edge", "per-element maximum", cast(hi, base))]
    for i in _pick(list(range(len(samples))), ctx.seed, 2):
        s = samples[i]
        stretched = {n: np.clip(mean[n] + 2.0 * (np.asarray(s[n], dtype=np.float64) - mean[n]), lo[n], hi[n])
                     for n in names}
        probes.append(("range-edge", f"calibration sample {i} at double contrast", cast(stretched, s)))
    mix = {n: np.where(rng.random(base[n].shape) < 0.5, np.broadcast_to(lo[n], base[n].shape),
                       np.broadcast_to(hi[n], base[n].shape)) for n in names}
    probes.append(("range-edge", "random mix of the two edges", cast(mix, base)))
    return probes


# -- any model ---------------------------------------------------------------------------------------------
@probe_family("io-spec", lambda ctx: bool(ctx.io.inputs))
def io_spec_probes(ctx: ProbeContext) -> list[Probe]:
    rng = np.random.default_rng(3000 + ctx.seed)
    probes: list[Probe] = []
    for kind, pid, fill in (("zeros", "all zeros", lambda s, d: np.zeros(s, d)),
                            ("ones", "all ones", lambda s, d: np.ones(s, d)),
                            ("large", "normal values ×4", lambda s, d: (rng.standard_normal(s) * 4).astype(d))):
        feeds = {}
        for spec in ctx.io.inputs:
            if spec.dtype.startswith("onnx:"):
                return []
            dt = np.dtype(spec.dtype)
            shape = spec.concrete()
            feeds[spec.name] = fill(shape, dt) if dt.kind == "f" or kind != "large" else np.zeros(shape, dt)
        probes.append((kind, pid, feeds))
    ctx.notes.append("io-spec probes: zeros, ones and large values (no text, image or calibration data to shape them)")
    return probes
