"""Datasets: read the files a dataset config declares, split them, subsample the training set.

Three generic readers cover every dataset (the config's `format` picks one; a `files` entry
may name its own `format`, `text_column` and `label_column`, as SST-2's phrase-level TSV does
beside sentence-level label_text files):
  label_text       one example per line, `<integer label> <text>`
  lines_per_class  one file per class, one text per line, blank lines skipped (gzip allowed)
  tsv              a header row naming columns; `text_column` and `label_column` pick two
  file             a user's own .csv/.tsv/.parquet/.txt named by `dataset.path` (user_file.py)

Split policies: `given` (train/dev/test files), `holdout` and `kfold` (cut from one file), and
`kfold_unless_given`: the given split when the dataset has a test file, else k-fold CV, which
is how Kim (2014) evaluated one experiment across datasets of both kinds.

`load_tokenized` adds each text's tokens. A dataset is read and tokenized once: the result is
memoised in the process and stored on disk as parquet under `paths.cache_dir`/tokenized (with a
manifest of sizes and sha256s, checked on reading; no pickle), keyed by the dataset config minus
its split settings; that config pins each file's sha256, so the key changes with the content.
Folds, dev cuts and subsamples are then cut from the tokens.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import StratifiedKFold, train_test_split

from embcompare.data import user_file
from embcompare.data.fetch import ensure_file
from embcompare.data.text import tokenize
from embcompare.errors import EmbcompareError
from embcompare.stamps import manifest_problem, write_checked_cache
from embcompare.validation import check_classes, check_train_n

log = logging.getLogger("embcompare")

Reader = Callable[[Path, dict, "DatasetSpec"], Iterator[tuple[str, int]]]
READERS: dict[str, Reader] = {}


def register_reader(name: str):
    def decorate(reader: Reader) -> Reader:
        READERS[name] = reader
        return reader

    return decorate


@dataclass(frozen=True)
class DatasetSpec:
    """The parts of `cfg.dataset` that reading and splitting need."""

    name: str
    format: str
    encoding: str
    labels: tuple[str, ...]
    files: dict
    split: dict
    text_column: str = "text"
    label_column: str = "label"

    @classmethod
    def from_config(cls, cfg) -> DatasetSpec:
        if user_file.is_user_file(cfg):
            return cls(
                name=cfg.name,
                format=cfg.format,
                encoding=cfg.encoding,
                labels=tuple(user_file.label_names(cfg)),
                files=user_file.files_entry(cfg),
                split=dict(cfg.split),
                text_column=cfg.text_column,
                label_column=cfg.label_column,
            )
        formats = {"dataset.format": cfg.format} | {
            f"dataset.files.{key}.format": entry["format"]
            for key, entry in cfg.files.items()
            if "format" in entry
        }
        for key, name in formats.items():
            if name not in READERS:
                raise EmbcompareError(f"{key}={name!r} is unknown; choose one of {sorted(READERS)}")
        return cls(
            name=cfg.name,
            format=cfg.format,
            encoding=cfg.encoding,
            labels=tuple(cfg.labels),
            files={k: dict(v) for k, v in cfg.files.items()},
            split=dict(cfg.split),
            text_column=cfg.get("text_column", "text"),
            label_column=cfg.get("label_column", "label"),
        )


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray
    tokens: list[list[str]] | None = None  # filled by load_tokenized
    truncated: np.ndarray | None = None  # ... and which texts dataset.max_length cut

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices) -> Split:
        tokens = None if self.tokens is None else [self.tokens[i] for i in indices]
        truncated = None if self.truncated is None else self.truncated[indices]
        return Split([self.texts[i] for i in indices], self.labels[indices], tokens, truncated)

    def truncated_count(self) -> int:
        return 0 if self.truncated is None else int(self.truncated.sum())


@dataclass
class Splits:
    train: Split
    dev: Split
    test: Split


def numbered_lines(
    path: Path, encoding: str, encoding_key: str | None = "dataset.encoding"
) -> Iterator[tuple[int, str]]:
    """Numbered lines without their line ending (LF or CRLF); gzip read transparently.

    Lines are decoded one by one so a bad byte is reported at its real line number, with the
    config key that sets the encoding, when there is one.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        where = f"{encoding_key}={encoding!r}" if encoding_key else f"encoding {encoding!r}"
        raise EmbcompareError(f"{where} is not a known text encoding (reading {path})") from None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as error:
                fix = f"; fix {encoding_key}" if encoding_key else ""
                raise EmbcompareError(
                    f"{path}: line {number}: bytes are not valid {encoding} ({error.reason}){fix}"
                ) from None
            yield number, line.rstrip("\r\n")


def _label_index(value: str, spec: DatasetSpec, path: Path, line: int) -> int:
    try:
        label = int(value)
    except ValueError:
        label = spec.labels.index(value) if value in spec.labels else -1
    if not 0 <= label < len(spec.labels):
        raise EmbcompareError(
            f"{path}: line {line}: label {value!r} is not one of the {len(spec.labels)} "
            f"declared in dataset.labels {list(spec.labels)}"
        )
    return label


@register_reader("label_text")
def read_label_text(path: Path, entry: dict, spec: DatasetSpec) -> Iterator[tuple[str, int]]:
    for number, line in numbered_lines(path, spec.encoding):
        if not line.strip():
            continue
        label, _, text = line.partition(" ")
        # an empty text is kept: MPQA has one, and dropping it would change the dataset's size
        yield text, _label_index(label, spec, path, number)


@register_reader("lines_per_class")
def read_lines_per_class(path: Path, entry: dict, spec: DatasetSpec) -> Iterator[tuple[str, int]]:
    if "label" not in entry:
        raise EmbcompareError(f"dataset.files entry for {entry['path']} needs a `label` key")
    label = _label_index(str(entry["label"]), spec, path, 0)
    for _, line in numbered_lines(path, spec.encoding):
        if line.strip():
            yield line, label


def tsv_columns(
    path: Path, encoding: str, columns: list[str], encoding_key: str | None = "dataset.encoding"
) -> Iterator[tuple[int, list[str]]]:
    """(line number, the named columns' values) for each row of a TSV with a header line."""
    numbered = numbered_lines(path, encoding, encoding_key)
    first = next(numbered, None)
    if first is None:
        raise EmbcompareError(f"{path}: empty file, expected a header line naming {columns}")
    header = first[1].split("\t")
    missing = set(columns) - set(header)
    if missing:
        raise EmbcompareError(f"{path}: line 1: header {header} lacks column(s) {sorted(missing)}")
    positions = [header.index(column) for column in columns]
    for number, line in numbered:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise EmbcompareError(
                f"{path}: line {number}: expected {len(header)} tab-separated fields, "
                f"got {len(fields)}"
            )
        yield number, [fields[at] for at in positions]


@register_reader("tsv")
def read_tsv(path: Path, entry: dict, spec: DatasetSpec) -> Iterator[tuple[str, int]]:
    columns = [
        entry.get("text_column", spec.text_column),
        entry.get("label_column", spec.label_column),
    ]
    for number, (text, label) in tsv_columns(path, spec.encoding, columns):
        yield text, _label_index(label.strip(), spec, path, number)


@register_reader(user_file.FORMAT)
def read_user_file(path: Path, entry: dict, spec: DatasetSpec) -> Iterator[tuple[str, int]]:
    stat = path.stat()
    table = user_file.read_table(
        str(path.resolve()),
        (stat.st_size, stat.st_mtime_ns),
        spec.text_column,
        spec.label_column,
        spec.encoding,
    )
    index = {label: i for i, label in enumerate(spec.labels)}
    for row, (text, label) in enumerate(zip(table.texts, table.labels, strict=True), start=1):
        if label not in index:
            raise EmbcompareError(
                f"{path}: row {row}: label {label!r} is not one of dataset.labels "
                f"{list(spec.labels)}"
            )
        yield text, index[label]


def read_split(spec: DatasetSpec, data_dir: Path, mirror: str | None, split: str) -> Split:
    texts: list[str] = []
    labels: list[int] = []
    for entry in spec.files.values():
        if entry.get("split", "all") != split:
            continue
        # a user's own file is read where it is; the data dir holds the pinned files only
        path = (
            Path(entry["path"]) if entry.get("user_file") else ensure_file(entry, data_dir, mirror)
        )
        reader = READERS[entry.get("format", spec.format)]
        for text, label in reader(path, entry, spec):
            texts.append(text)
            labels.append(label)
    return Split(texts, np.array(labels, dtype=np.int64))


def _has_split(spec: DatasetSpec, split: str) -> bool:
    return any(entry.get("split", "all") == split for entry in spec.files.values())


def _stratified_cut(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Return (rest, held_out) with `fraction` of each class held out."""
    indices = np.arange(len(split))
    rest, held = train_test_split(
        indices, test_size=fraction, random_state=seed, stratify=split.labels
    )
    return split.take(np.sort(rest)), split.take(np.sort(held))


def _kfold_cut(split: Split, folds: int, fold: int, seed: int) -> tuple[Split, Split]:
    if not 0 <= fold < folds:
        raise EmbcompareError(f"dataset.split.fold={fold} must be in [0, {folds})")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest, held = list(splitter.split(np.zeros(len(split)), split.labels))[fold]
    return split.take(rest), split.take(held)


def load_splits(
    cfg_dataset, data_dir: Path, mirror: str | None = None, read_split=read_split
) -> Splits:
    """Read a dataset and apply its split policy (see the module docstring)."""
    spec = DatasetSpec.from_config(cfg_dataset)
    policy, seed = spec.split["policy"], int(spec.split.get("seed", 0))
    if policy == "kfold_unless_given":
        policy = "given" if _has_split(spec, "test") else "kfold"
    if policy == "given":
        train, test = (read_split(spec, data_dir, mirror, s) for s in ("train", "test"))
    elif policy in ("holdout", "kfold"):
        everything = read_split(spec, data_dir, mirror, "all")
        _require_examples(everything, spec, "all")
        per_class = 2 if policy == "holdout" else int(spec.split["folds"])
        _require_classes(everything, spec, "whole dataset", per_class)
        if policy == "holdout":
            train, test = _stratified_cut(everything, float(spec.split["test_fraction"]), seed)
        else:
            train, test = _kfold_cut(
                everything, int(spec.split["folds"]), int(spec.split["fold"]), seed
            )
    else:
        raise EmbcompareError(
            f"dataset.split.policy={policy!r} is unknown; choose given, holdout, kfold "
            "or kfold_unless_given"
        )
    _require_examples(train, spec, "train")
    _require_examples(test, spec, "test")
    _require_classes(train, spec, "training split", 1 if _has_split(spec, "dev") else 2)
    if _has_split(spec, "dev"):
        dev = read_split(spec, data_dir, mirror, "dev")
    else:
        train, dev = _stratified_cut(train, float(spec.split["dev_fraction"]), seed)
    return Splits(train=train, dev=dev, test=test)


# Bump when reading or tokenizing changes what a stored tokenized dataset holds.
TOKENIZED_FORMAT = 2


def load_tokenized(cfg_dataset, data_dir: Path, mirror: str | None, cache_dir: Path) -> Splits:
    """`load_splits` with tokens, reading and tokenizing each dataset version only once."""
    settings = _plain(cfg_dataset)
    settings.pop("split", None)  # folds and cuts are made afterwards, from the cached tokens
    if user_file.is_user_file(cfg_dataset):  # its config names the file, not its content
        from embcompare.stamps import content_stamp

        settings["content_sha256"] = content_stamp(user_file.dataset_path(cfg_dataset), cache_dir)
    files = _tokenized_files(
        json.dumps(settings, sort_keys=True), str(data_dir), mirror, str(cache_dir)
    )
    empty = Split([], np.zeros(0, dtype=np.int64), [])
    return load_splits(
        cfg_dataset, data_dir, mirror, lambda _spec, _dir, _mirror, split: files.get(split, empty)
    )


def _plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


@functools.lru_cache(maxsize=2)
def _tokenized_files(
    settings_json: str, data_dir: str, mirror: str | None, cache_dir: str
) -> dict[str, Split]:
    """Each split's texts, labels and tokens, stored as parquet (data, never code: a file
    planted there cannot run) with a manifest of sizes and sha256s that is checked on reading.
    data_dir and mirror say where the files are, not what they hold: the sha256s do that."""
    key = hashlib.sha256(f"{settings_json}|{TOKENIZED_FORMAT}".encode()).hexdigest()[:16]
    name = json.loads(settings_json).get("name", "dataset")
    directory = Path(cache_dir) / "tokenized" / f"{name}-{key}"
    if directory.exists():
        problem = manifest_problem(directory)
        if problem is None:
            return _read_tokenized(directory)
        log.warning("tokenized cache %s: %s; rebuilding it", directory, problem)
    files = _read_and_tokenize(settings_json, data_dir, mirror)
    _write_tokenized(directory, files)
    return files


def _write_tokenized(directory: Path, files: dict[str, Split]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def fill(staging: Path) -> list[str]:
        for split_name, split in files.items():
            table = pa.table(
                {
                    "text": pa.array(split.texts, pa.string()),
                    "label": pa.array(split.labels, pa.int64()),
                    "tokens": pa.array(split.tokens, pa.list_(pa.string())),
                    "truncated": pa.array(split.truncated, pa.bool_()),
                }
            )
            pq.write_table(table, staging / f"{split_name}.parquet")
        return [f"{split_name}.parquet" for split_name in files]

    write_checked_cache(directory, fill)


def _read_tokenized(directory: Path) -> dict[str, Split]:
    import pyarrow.parquet as pq

    files = {}
    for path in sorted(directory.glob("*.parquet")):
        columns = pq.read_table(path).to_pydict()
        files[path.stem] = Split(
            columns["text"],
            np.array(columns["label"], dtype=np.int64),
            columns["tokens"],
            np.array(columns["truncated"], dtype=bool),
        )
    return files


def _read_and_tokenize(settings_json: str, data_dir: str, mirror: str | None) -> dict[str, Split]:
    """Every split the files declare, each text tokenized and cut to dataset.max_length."""
    cfg = OmegaConf.create(json.loads(settings_json))
    spec = DatasetSpec.from_config(OmegaConf.merge(cfg, {"split": {}}))
    names = {entry.get("split", "all") for entry in spec.files.values()} - {"none"}
    files = {name: read_split(spec, Path(data_dir), mirror, name) for name in sorted(names)}
    max_length = cfg.get("max_length")
    for split in files.values():
        full = [tokenize(t, cfg.lowercase, cfg.strip_html) for t in split.texts]
        split.tokens = [tokens[:max_length] for tokens in full]
        split.truncated = np.array(
            [max_length is not None and len(tokens) > max_length for tokens in full], dtype=bool
        )
    return files


def _require_examples(split: Split, spec: DatasetSpec, name: str) -> None:
    if len(split) == 0:
        files = [e["path"] for e in spec.files.values() if e.get("split", "all") == name]
        raise EmbcompareError(f"dataset {spec.name}: no {name} examples in {files or 'any file'}")


def _require_classes(split: Split, spec: DatasetSpec, what: str, per_class: int) -> None:
    """Stratified cuts need every class at least twice (folds: once per fold), and a
    classifier needs two classes."""
    files = sorted({e["path"] for e in spec.files.values() if e.get("split", "all") != "none"})
    check_classes(
        split.labels, spec.labels, what, f"dataset {spec.name} ({', '.join(files)})", per_class
    )


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded ordering of examples whose every prefix is (nearly) class-stratified.

    Each class is shuffled, and its k-th example gets the key (k + 0.5) / class size, so
    sorting by key interleaves classes in proportion. Taking the first n of this one order
    makes the n=100 sample a subset of the n=500 sample for the same seed.
    """
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    tiebreak = rng.random(len(labels))
    return np.lexsort((tiebreak, keys))


def subsample(train: Split, n: int | str, seed: int, label_names=None) -> Split:
    check_train_n(n)
    if n == "all":
        return train
    if n > len(train):
        raise EmbcompareError(
            f"train.n={n} exceeds the {len(train)} training examples available; use a smaller "
            "train.n or train.n=all"
        )
    sample = train.take(np.sort(nested_order(train.labels, seed)[:n]))
    names = list(label_names or range(int(train.labels.max()) + 1))
    check_classes(sample.labels, names, "training sample", f"train.n={n}")
    return sample
