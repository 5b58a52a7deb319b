"""What prune, distill and QAT train on: any data spec ``edgeship data`` lists (``data:digits-train``,
``data:docstrings``, ``data:sentences:calib``, ...), an .npz or a folder of .npy files, fitted to the
source's inputs, plus text files (one sentence per line) tokenised by the source's tokenizer.

Text data sets get the source's own tokenizer; a source without one cannot read text, which is
refused here rather than fed another model's token ids.
"""

from __future__ import annotations

from pathlib import Path

from edgeship.core.data import DATA, Dataset, load_data
from edgeship.core.errors import BadInput
from edgeship.sources.torch_source import TorchSource


def load_training_data(spec: str | Path | Dataset, source: TorchSource, limit: int | None = None,
                       text_files: tuple[str, ...] = ()) -> Dataset:
    """Training data fitted to the source's inputs (and ``text_files`` added, tokenised by the source)."""
    if isinstance(spec, Dataset):
        ds = spec
    else:
        _check_text_source(str(spec), source)
        ds = load_data(spec, source.io, limit=limit, tokenizer=source.extra.get("tokenizer"))
    if text_files:
        ds = _add_text(ds, source, text_files)
    if not ds.samples:
        raise BadInput(f"data {ds.name!r} is empty; give at least one sample")
    return ds


def _check_text_source(spec: str, source: TorchSource) -> None:
    name = spec.removeprefix("data:").partition(":")[0] if spec.startswith("data:") else None
    if name is not None and name in DATA and DATA.get(name).text and source.extra.get("tokenizer") is None:
        raise BadInput(f"data:{name} is text; {source.name} has no tokenizer to read it (give --data as an .npz "
                       "of its inputs)")


def text_dataset(source: TorchSource, sentences: list[str], name: str) -> Dataset:
    """Tokenise each sentence alone, at its natural length, with the source's tokenizer."""
    from edgeship.zoo.text import text_dataset as tokenised

    tok = source.extra.get("tokenizer")
    if tok is None:
        raise BadInput(f"{source.name} has no tokenizer, so text files cannot feed it; "
                       "give --data as an .npz of its inputs instead")
    return tokenised(name, sentences, source.io, tok, what=f"text for {source.name}", fixed_length=False)


def read_text_file(path: str | Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file (one sentence or passage per line)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"text file {str(p)!r} not found; give a UTF-8 file with one sentence per line")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise BadInput(f"text file {str(p)!r} is not UTF-8 text; convert it (iconv -t utf-8)") from None
    lines = [ln for ln in lines if ln]
    if not lines:
        raise BadInput(f"text file {str(p)!r} has no non-empty lines")
    return lines


def text_files_dataset(source: TorchSource, files: tuple[str, ...]) -> Dataset:
    """The lines of ``files`` as one data set tokenised by the source."""
    return text_dataset(source, [line for f in files for line in read_text_file(f)], "+".join(files))


def _add_text(ds: Dataset, source: TorchSource, files: tuple[str, ...]) -> Dataset:
    extra = text_files_dataset(source, files)
    if ds.labels is not None:
        raise BadInput("text files carry no labels but the data set has labels; train on one or the other")
    return Dataset(f"{ds.name}+text", ds.samples + extra.samples, None)
