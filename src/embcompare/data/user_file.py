"""Your own dataset: one file named on the command line, no config file and no package edit.

    embcompare run dataset=file dataset.path=reviews.csv \\
        dataset.text_column=review dataset.label_column=stars

The file is .csv or .tsv (a header row naming the columns), .parquet, or .txt with one
`label<TAB>text` line per example. Its labels are its own values, strings or integers, sorted
(numerically when all are integers) unless dataset.labels lists them. It is read where it is,
absolute or relative to the working directory, never copied into the data dir, so
`embcompare data` and the tests never look for it. dataset.sha256 is optional: when given, the
file must match it; without it a warning names the file and its sha256. Either way the file's
content enters the run key (config._input_stamps) and the tokenized cache's key, so editing the
file computes its runs again. It is split like any single-file dataset: dataset.split.policy
holdout or kfold.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from embcompare.errors import EmbcompareError

log = logging.getLogger("embcompare")

FORMAT = "file"  # dataset.format of conf/dataset/file.yaml
SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
POLICIES = ("holdout", "kfold")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Table:
    """The examples of a file: each text and its label as the file writes it."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]


def is_user_file(cfg_dataset) -> bool:
    return cfg_dataset.get("format") == FORMAT


def dataset_path(cfg_dataset) -> Path:
    """dataset.path, checked: given, a supported kind of file, and there."""
    if OmegaConf.is_missing(cfg_dataset, "path") or not cfg_dataset.get("path"):
        raise EmbcompareError(
            "dataset.path is required with dataset=file: dataset.path=/path/to/examples.csv "
            f"(one of {', '.join(SUFFIXES)})"
        )
    path = Path(str(cfg_dataset.path)).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise EmbcompareError(
            f"dataset.path={str(path)!r}: cannot read {path.suffix or 'extension-less'} files; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise EmbcompareError(f"dataset.path={str(path)!r}: no such file")
    return path


def files_entry(cfg_dataset) -> dict:
    """The `files` mapping that the dataset readers expect, for the one user file."""
    return {"all": {"path": str(dataset_path(cfg_dataset)), "split": "all", "user_file": True}}


def prepare(cfg_dataset, cache_dir) -> None:
    """Check dataset=file's settings and content, and fill a null dataset.labels from the file,
    before a run reads anything; a mistake is one line naming the key."""
    path = dataset_path(cfg_dataset)
    policy = OmegaConf.select(cfg_dataset, "split.policy", default=None)
    if policy not in POLICIES:
        raise EmbcompareError(
            f"dataset.split.policy={policy!r}: a file dataset is cut by {' or '.join(POLICIES)}"
        )
    check_content(cfg_dataset, path, cache_dir)
    labels = label_names(cfg_dataset)
    if cfg_dataset.get("labels") is None:
        cfg_dataset.labels = labels


def check_content(cfg_dataset, path: Path, cache_dir) -> str:
    """The file's sha256, compared with dataset.sha256 when that is given."""
    from embcompare.stamps import content_stamp

    actual = content_stamp(path, cache_dir)
    expected = cfg_dataset.get("sha256")
    if expected is None:
        log.warning(
            "%s: no dataset.sha256 given, so its content is not checked; it is %s "
            "(add dataset.sha256=%s to pin it)",
            path,
            actual,
            actual,
        )
    elif not _SHA256.fullmatch(str(expected).strip().lower()):
        raise EmbcompareError(f"dataset.sha256={expected!r} is not 64 hex digits")
    elif str(expected).strip().lower() != actual:
        raise EmbcompareError(
            f"dataset.path={str(path)!r}: sha256 is {actual}, but dataset.sha256 is {expected}; "
            "the file changed, or dataset.sha256 names another file"
        )
    return actual


def label_names(cfg_dataset) -> list[str]:
    """dataset.labels when given (each of the file's labels must be among them), else the
    file's distinct labels; at least two either way."""
    path = dataset_path(cfg_dataset)
    found = sorted(set(table_of(cfg_dataset).labels), key=_label_order)
    if len(found) < 2:
        raise EmbcompareError(
            f"dataset.label_column={cfg_dataset.get('label_column')!r}: {path} holds "
            f"{len(found)} distinct label(s) {found}; a classifier needs at least 2"
        )
    declared = cfg_dataset.get("labels")
    if declared is None:
        return found
    declared = [str(label) for label in declared]
    unknown = [label for label in found if label not in declared]
    if unknown:
        raise EmbcompareError(
            f"dataset.labels={declared}: {path} also holds label(s) {unknown}; list them too, "
            "or set dataset.labels=null to take the file's labels"
        )
    return declared


def _label_order(label: str) -> tuple:
    """Integers in numeric order (2 before 10), before any other label in text order."""
    return (0, int(label), "") if re.fullmatch(r"-?\d+", label) else (1, 0, label)


def table_of(cfg_dataset) -> Table:
    path = dataset_path(cfg_dataset)
    stat = path.stat()
    return read_table(
        str(path.resolve()),
        (stat.st_size, stat.st_mtime_ns),
        str(cfg_dataset.get("text_column", "text")),
        str(cfg_dataset.get("label_column", "label")),
        str(cfg_dataset.get("encoding", "utf-8")),
    )


@functools.lru_cache(maxsize=4)
def read_table(path: str, version: tuple, text_column: str, label_column: str, encoding: str):
    """Texts and labels of a user file (`version`, its size and mtime, keeps the memo fresh)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".txt":
        return _read_label_tab_text(file, encoding)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = pq.read_table(file).to_pandas()
    else:
        columns = _read_delimited(file, encoding, "\t" if suffix == ".tsv" else ",")
    return _table_from_columns(columns, file, text_column, label_column)


def _read_delimited(file: Path, encoding: str, separator: str):
    import pandas as pd

    try:
        return pd.read_csv(
            file,
            sep=separator,
            dtype=str,
            keep_default_na=False,  # an empty field is an empty text, not NaN
            encoding=encoding,
            # a TSV is split at tabs only; a CSV keeps its quoted fields (commas, newlines)
            quoting=csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL,
        )
    except LookupError:
        raise EmbcompareError(f"dataset.encoding={encoding!r} is not a known encoding") from None
    except UnicodeDecodeError as error:
        raise EmbcompareError(
            f"{file}: bytes are not valid {encoding} ({error.reason}); fix dataset.encoding"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        first = " ".join(str(error).split())
        raise EmbcompareError(f"{file}: not a readable {file.suffix} table ({first})") from None


def _table_from_columns(columns, file: Path, text_column: str, label_column: str) -> Table:
    for key, column in (
        ("dataset.text_column", text_column),
        ("dataset.label_column", label_column),
    ):
        if column not in columns.columns:
            raise EmbcompareError(
                f"{key}={column!r} is not a column of {file}; its columns: "
                f"{[str(c) for c in columns.columns]}"
            )
    for key, column in (
        ("dataset.text_column", text_column),
        ("dataset.label_column", label_column),
    ):
        empty = columns[column].isna().to_numpy().nonzero()[0]
        if len(empty):
            raise EmbcompareError(
                f"{file}: row {empty[0] + 1} has no value in column {column!r} ({key})"
            )
    texts = columns[text_column]
    if not all(isinstance(text, str) for text in texts):
        raise EmbcompareError(
            f"dataset.text_column={text_column!r}: column of {file} holds {texts.dtype}, not text"
        )
    labels = tuple(_label_text(value) for value in columns[label_column])
    return Table(tuple(texts), labels)


def _label_text(value) -> str:
    """A label as text: 3 and 3.0 (an integer column pandas made float) both read '3'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_label_tab_text(file: Path, encoding: str) -> Table:
    try:
        # LF or CRLF only: str.splitlines would also cut a text at \x0b, \x1c or U+2028
        lines = [line.rstrip("\r") for line in file.read_text(encoding=encoding).split("\n")]
    except LookupError:
        raise EmbcompareError(f"dataset.encoding={encoding!r} is not a known encoding") from None
    except UnicodeDecodeError as error:
        raise EmbcompareError(
            f"{file}: bytes are not valid {encoding} ({error.reason}); fix dataset.encoding"
        ) from None
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab or not label.strip():
            raise EmbcompareError(f"{file}: line {number}: expected label<TAB>text, found {line!r}")
        texts.append(text)
        labels.append(label.strip())
    return Table(tuple(texts), tuple(labels))
