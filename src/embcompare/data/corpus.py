"""Unlabelled text corpora for pretraining word vectors (conf/corpus).

A corpus config declares its files (fetched through `fetch.ensure_file`, like a dataset's)
and one of two formats:
  tsv    a header row; `text_column` names the column holding one document per row
  lines  one document per line (blank lines skipped)
Texts are tokenized with the classification runs' tokenizer, so that pretrained vectors and
task vocabularies spell words the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from embcompare.data.datasets import numbered_lines, tsv_columns
from embcompare.data.fetch import ensure_file
from embcompare.data.text import tokenize
from embcompare.errors import EmbcompareError

FORMATS = ("tsv", "lines")


def corpus_files(cfg_corpus, data_dir: Path, mirror: str | None) -> list[Path]:
    """The corpus's text files (entries with split `none`, such as a README, are left out)."""
    if cfg_corpus.format not in FORMATS:
        raise EmbcompareError(
            f"corpus.format={cfg_corpus.format!r} is unknown; choose one of {list(FORMATS)}"
        )
    return [
        ensure_file(entry, data_dir, mirror)
        for entry in cfg_corpus.files.values()
        if entry.get("split", "all") != "none"
    ]


def iter_texts(path: Path, cfg_corpus) -> Iterator[str]:
    encoding = cfg_corpus.get("encoding", "utf-8")
    if cfg_corpus.format == "lines":
        numbered = numbered_lines(path, encoding, "corpus.encoding")
        yield from (line for _, line in numbered if line.strip())
        return
    column = cfg_corpus.get("text_column", "text")
    for _, (text,) in tsv_columns(path, encoding, [column], "corpus.encoding"):
        yield text


def read_corpus(
    cfg_corpus, data_dir: Path, mirror: str | None, max_tokens: int | None = None
) -> list[list[str]]:
    """Tokenized documents, in file order; with `max_tokens`, only the first that many tokens."""
    lowercase = bool(cfg_corpus.get("lowercase", True))
    strip_html = bool(cfg_corpus.get("strip_html", False))
    documents: list[list[str]] = []
    total = 0
    with tqdm(total=max_tokens, unit="tok", unit_scale=True, desc="reading corpus") as bar:
        for path in corpus_files(cfg_corpus, data_dir, mirror):
            for text in iter_texts(path, cfg_corpus):
                tokens = tokenize(text, lowercase=lowercase, strip_html=strip_html)
                if max_tokens is not None:
                    tokens = tokens[: max_tokens - total]
                if tokens:
                    documents.append(tokens)
                    total += len(tokens)
                    bar.update(len(tokens))
                if max_tokens is not None and total >= max_tokens:
                    return documents
    if not documents:
        raise EmbcompareError(f"corpus {cfg_corpus.name}: no tokens in its files")
    return documents
