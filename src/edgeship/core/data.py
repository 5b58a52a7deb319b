"""Data sets: named input arrays fitted to a model's IO spec.

A ``Dataset`` is a list of samples; a sample is a feed dict ``{input name: array}`` whose arrays
carry a leading batch dimension (usually 1), so inputs of different lengths (sentences tokenised
alone) live side by side. ``labels`` (one per row, in sample order) enable task accuracy.

Where data comes from:
- ``data:NAME[:SPLIT]`` — a registered source (``data:images:calib``, ``data:sentences:test``,
  ``data:digits-test``, ``data:synthetic``); sources are fitted to the model's inputs;
- ``FILE.npz`` — arrays named like the model's inputs, optional ``labels``: one feed set at the
  model's own ranks (scalars included), or samples on an extra leading axis (or one per batch row),
  decided per input by comparing ranks (:mod:`edgeship.core.feeds`);
- a folder of ``NAME.npy`` files, the same layout; a folder of ``.npz`` files, one feed set per call
  of a stateful model, with ``carry.json`` naming the state carried from one call to the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.errors import BadInput
from edgeship.core.registry import Registry

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass
class Dataset:
    name: str
    samples: list[Feeds]
    labels: np.ndarray | None = None
    # Builds one fixed-shape feed (batch, sequence length) from the data, for benchmarks; sources
    # that know how (a tokenizer re-tokenising at a fixed length) provide it.
    fixed_batch: Callable[[int, int | None], Feeds] | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    # what each sample is, one short line per sample ("#3 reply: 'ok'", "coffee#5 close-up"): how
    # a check names the sample behind a worst case; None for anonymous data (named by index)
    ids: list[str] | None = None
    # a stateful model's calls: input name -> the output of the previous call it takes (carry.json)
    carry: dict[str, str] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Feeds]:
        return iter(self.samples)

    @property
    def rows(self) -> int:
        return sum(next(iter(s.values())).shape[0] if s else 0 for s in self.samples)

    def head(self, n: int) -> Dataset:
        rows = sum(next(iter(s.values())).shape[0] for s in self.samples[:n])
        labels = None if self.labels is None else self.labels[:rows]
        ids = None if self.ids is None else self.ids[:n]
        return dataclasses.replace(self, samples=self.samples[:n], labels=labels, ids=ids)

    def sample_ids(self) -> list[str]:
        """One name per sample: the source's ids, else ``#index``."""
        return list(self.ids) if self.ids is not None and len(self.ids) == len(self.samples) else \
            [f"#{i}" for i in range(len(self.samples))]

    def batch(self, batch: int = 1, seq: int | None = None) -> Feeds:
        """One feed of ``batch`` rows (and sequence length ``seq`` where the source supports it)."""
        if self.fixed_batch is not None:
            return self.fixed_batch(batch, seq)
        if seq is not None:
            raise BadInput(f"data {self.name!r} has no sequence axis to set; drop --seq or use --shape")
        first = self.samples[0]
        if any(np.ndim(v) == 0 for v in first.values()) or (self.info.get("feeds") and batch == 1):
            # a feed set as the file gave it (scalars, states whose first dim is not a batch): as it is
            if batch != 1:
                raise BadInput(f"data {self.name!r} holds whole feed sets (scalar or unbatched inputs); they "
                               "cannot be stacked into a batch: use --batch 1")
            return dict(first)
        rows: dict[str, list[np.ndarray]] = {}
        shapes = {k: v.shape[1:] for k, v in self.samples[0].items()}
        count = 0
        for s in self.samples * (batch // max(1, self.rows) + 1):
            if any(v.shape[1:] != shapes[k] for k, v in s.items()):
                continue  # rows of another length cannot be stacked
            for k, v in s.items():
                rows.setdefault(k, []).append(v)
            count += next(iter(s.values())).shape[0]
            if count >= batch:
                break
        return {k: np.concatenate(v)[:batch] for k, v in rows.items()}


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A registered data source. ``load(io, split, limit, shapes)`` fits the data to a model's inputs;
    a ``text`` source also takes ``tokenizer`` (the model source's, or None when the caller has none)."""

    name: str
    description: str
    load: Callable[..., Dataset]
    splits: tuple[str, ...] = ()
    default_split: str | None = None
    text: bool = False


SourceFn = Callable[..., Dataset]
DATA: Registry[DataSource] = Registry("data source", plugins="edgeship.data")


def register_data(name: str, description: str, splits: tuple[str, ...] = (),
                  default_split: str | None = None, text: bool = False) -> Callable[[SourceFn], SourceFn]:
    def deco(fn: SourceFn) -> SourceFn:
        DATA.add(name, DataSource(name, description, fn, splits, default_split, text))
        return fn

    return deco


def data_sources() -> list[DataSource]:
    return [s for _, s in DATA.items()]


def sibling_split(name: str, split: str) -> str | None:
    """``data:NAME:OTHER`` → ``data:NAME:split`` when that registered source has ``split`` (the
    selection split beside a calibration split), else None."""
    if not name.startswith("data:"):
        return None
    source_name, _, current = name[5:].partition(":")
    if source_name not in DATA.names():
        return None
    source = DATA.get(source_name)
    if split not in source.splits or split == (current or source.default_split):
        return None
    return f"data:{source_name}:{split}"


def parse_shapes(items: list[str] | tuple[str, ...] | None) -> dict[str, tuple[int, ...]]:
    """``["input:1,3,320,320"]`` → ``{"input": (1, 3, 320, 320)}``."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items or ():
        name, sep, dims = item.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = tuple(int(d) for d in dims.split(","))
            if any(d <= 0 for d in out[name]):
                raise ValueError
        except ValueError:
            raise BadInput(f"--shape {item!r}: expected NAME:D0,D1,... with positive sizes, "
                           "for example input:1,3,224,224") from None
    return out


def load_data(spec: str | Path | Dataset, io: IOSpec, shapes: dict[str, tuple[int, ...]] | None = None,
              limit: int | None = None, validate: bool = True, tokenizer: Callable[..., Any] | None = None) -> Dataset:
    """Load data for a model with IO spec ``io`` and check it fits (names, dtypes, shapes, finite).

    ``tokenizer`` (the model source's, e.g. ``source.extra["tokenizer"]``) tokenises text sources
    (``data:sentences``, ``data:docstrings``); without one they use their default tokenizer."""
    if isinstance(spec, Dataset):
        ds = spec
    else:
        text = str(spec)
        if text.startswith("data:"):
            name, _, split = text[5:].partition(":")
            source = DATA.get(name)
            if split and source.splits and split not in source.splits:
                raise BadInput(f"data:{name} has no split {split!r}; splits: {', '.join(source.splits)}")
            extra = {"tokenizer": tokenizer} if source.text else {}
            ds = source.load(io=io, split=split or source.default_split, limit=limit, shapes=shapes or {}, **extra)
        else:
            ds = _load_files(Path(text), io)
    if limit is not None and len(ds) > limit:
        ds = ds.head(limit)
    if validate:
        validate_data(ds, io)
    return ds


def _load_files(path: Path, io: IOSpec) -> Dataset:
    from edgeship.core.feeds import load_feed_files

    return load_feed_files(path, io)


def run_carrying(samples: list[Feeds], infer: Callable[[Feeds], Feeds],
                 carry: dict[str, str]) -> tuple[list[Feeds], list[Feeds]]:
    """Run a stateful model's calls in order, each input named in ``carry`` taking the previous call's
    output (``{"state": "new_state"}``); returns the inputs as fed and the outputs."""
    fed: list[Feeds] = []
    outs: list[Feeds] = []
    for i, sample in enumerate(samples):
        feeds = dict(sample)
        if i and carry:
            missing = [o for o in carry.values() if o not in outs[-1]]
            if missing:
                raise BadInput(f"carry.json names output(s) {', '.join(missing)}; the model's outputs are "
                               f"{', '.join(outs[-1])}")
            feeds.update({inp: np.asarray(outs[-1][out]) for inp, out in carry.items()})
        fed.append(feeds)
        outs.append(infer(feeds))
    return fed, outs


_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool"}


def validate_data(ds: Dataset, io: IOSpec) -> None:
    """Names, dtypes, ranks, fixed dims and finiteness; casts within a kind (float64→float32)."""
    if not ds.samples:
        raise BadInput(f"data {ds.name!r} is empty; give at least one sample")
    for i, sample in enumerate(ds.samples):
        for spec in io.inputs:
            if spec.name not in sample:
                raise BadInput(f"data {ds.name!r} sample {i} lacks input {spec.name!r}; "
                               f"model inputs: {', '.join(io.input_names)}")
            sample[spec.name] = _fit(sample[spec.name], spec, ds.name)


def _fit(arr: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    want = np.dtype(spec.dtype) if not spec.dtype.startswith("onnx:") else arr.dtype
    if _KINDS.get(arr.dtype.kind) != _KINDS.get(want.kind):
        raise BadInput(f"data {where!r}: input {spec.name!r} is {arr.dtype}, the model wants {want}; convert it")
    if spec.shape and arr.ndim != len(spec.shape):
        raise BadInput(f"data {where!r}: input {spec.name!r} has shape {list(arr.shape)}, the model wants "
                       f"{len(spec.shape)} dims {_fmt(spec.shape)}")
    for got, dim in zip(arr.shape, spec.shape, strict=False):
        if isinstance(dim, int) and dim != got:
            raise BadInput(f"data {where!r}: input {spec.name!r} has shape {list(arr.shape)}, the model wants "
                           f"{_fmt(spec.shape)}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise BadInput(f"data {where!r}: input {spec.name!r} contains NaN or Inf; clean the data")
    return arr.astype(want, copy=False)


def _fmt(shape: tuple[Any, ...]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


# -- synthetic data from an IO spec ----------------------------------------------------------------
@register_data("synthetic", "random inputs generated from the model's IO spec (fix symbolic dims with --shape)")
def synthetic(io: IOSpec, split: str | None = None, limit: int | None = None,
              shapes: dict[str, tuple[int, ...]] | None = None, seed: int = 0) -> Dataset:
    shapes = shapes or {}
    unknown = set(shapes) - set(io.input_names)
    if unknown:
        raise BadInput(f"--shape names {', '.join(sorted(unknown))}, not inputs of the model "
                       f"({', '.join(io.input_names)})")
    rng = np.random.default_rng(seed)
    n = limit or 8
    fixed: dict[str, tuple[int, ...]] = {}
    for spec in io.inputs:
        if spec.name in shapes:
            if spec.shape and len(shapes[spec.name]) != len(spec.shape):
                raise BadInput(f"--shape {spec.name}: {len(shapes[spec.name])} dims given, the model has "
                               f"{len(spec.shape)} {_fmt(spec.shape)}")
            fixed[spec.name] = shapes[spec.name]
            continue
        fixed[spec.name] = spec.concrete()
    samples = []
    for _ in range(n):
        sample = {}
        for spec in io.inputs:
            dt = np.dtype(spec.dtype)
            shape = fixed[spec.name]
            if dt.kind == "f":
                sample[spec.name] = rng.standard_normal(shape).astype(dt)
            elif dt.kind == "b":
                sample[spec.name] = rng.random(shape) > 0.5
            elif "mask" in spec.name.lower():
                sample[spec.name] = np.ones(shape, dt)
            elif "type" in spec.name.lower() or "position" in spec.name.lower():
                sample[spec.name] = np.zeros(shape, dt)
            else:
                sample[spec.name] = rng.integers(0, 100, shape).astype(dt)
        samples.append(sample)
    return Dataset("data:synthetic", samples, info={"synthetic": True})
