"""Pretrained word vectors and the embedding matrix of a run.

Every vectors file is converted once into a cache of `vectors.npy` plus `words.txt`; later
loads memory-map the array, which takes well under a second for 400k x 50. Text formats
(word2vec/fastText text, GloVe) are parsed here, line by line, so every problem names its line;
gensim parses word2vec binary. Gzipped files are read transparently. A fastText .bin model
(`fasttext_bin`) is read by gensim in each process instead: its n-grams do not fit that cache.
A repeated word keeps its first vector (as gensim does), with a warning counting repeats. Within a
process a source is loaded once: the runs of a sweep share it (`forget_loaded` empties that memo).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embcompare.data.text import PAD_ID, UNK_ID, Vocabulary
from embcompare.errors import EmbcompareError
from embcompare.stamps import MANIFEST, manifest_problem, write_checked_cache
from embcompare.vectors.subwords import SubwordVectors, load_fasttext_bin

log = logging.getLogger("embcompare")


@dataclass
class PretrainedVectors:
    """A word list and its vectors; `subwords`, when the source is a fastText model, gives
    words outside the list a vector from their character n-grams."""

    name: str
    words: list[str]
    vectors: np.ndarray
    subwords: SubwordVectors | None = None

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def variance_matched_half_width(self) -> float:
        """Kim's rule: U(-a, a) has variance a^2/3, so a = sqrt(3 var) matches these vectors'
        variance (over the first 100,000 rows). Kept: every run on these vectors asks."""
        sample = np.asarray(self.vectors[: min(len(self.vectors), 100_000)], dtype=np.float64)
        return float(np.sqrt(3.0 * sample.var()))

    def row_of(self, word: str) -> int | None:
        """Exact match first, then the lowercased word (most sources are lowercased)."""
        row = self.index.get(word)
        return self.index.get(word.lower()) if row is None else row

    def to_keyedvectors(self):
        from gensim.models import KeyedVectors

        kv = KeyedVectors(self.dim, count=0, dtype=np.float32)
        kv.index_to_key = list(self.words)
        kv.key_to_index = dict(self.index)
        kv.vectors = np.asarray(self.vectors, dtype=np.float32)
        return kv


Loader = Callable[[dict, Path], PretrainedVectors]
SOURCE_FORMATS: dict[str, Loader] = {}


def register_format(*names: str):
    def decorate(loader: Loader) -> Loader:
        for name in names:
            SOURCE_FORMATS[name] = loader
        return loader

    return decorate


def load_pretrained(cfg_embedding, cache_dir: Path) -> PretrainedVectors:
    """The source a config names, loaded once per process for each config and file version."""
    cfg = _plain(cfg_embedding)
    path = Path(str(cfg.get("path") or "")).expanduser()
    stamp = _file_key(path) if cfg.get("path") and path.exists() else ""
    return _load_memoised(json.dumps(cfg, sort_keys=True, default=str), str(cache_dir), stamp)


def forget_loaded() -> None:
    """Empty the in-process memo, so the next load reads the disk cache again (for benchmarks)."""
    _load_memoised.cache_clear()


def _plain(cfg_embedding) -> dict:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg_embedding, DictConfig):
        return OmegaConf.to_container(cfg_embedding, resolve=True)
    return dict(cfg_embedding)


# The stamp (path, size, mtime of the source file) is part of the key: a file rewritten in
# place is loaded again. A few sources fit in memory; the vectors themselves are memory-mapped.
@functools.lru_cache(maxsize=4)
def _load_memoised(cfg_json: str, cache_dir: str, stamp: str) -> PretrainedVectors:
    cfg = json.loads(cfg_json)
    loader = SOURCE_FORMATS.get(cfg.get("format"))
    if loader is None:
        raise EmbcompareError(
            f"embedding.format={cfg.get('format')!r} is unknown; "
            f"choose one of {sorted(SOURCE_FORMATS)}"
        )
    source = loader(cfg, Path(cache_dir))
    expected = cfg.get("dim")
    if expected is not None and source.dim != int(expected):
        raise EmbcompareError(
            f"{cfg.get('path') or cfg['name']}: vectors have dimension {source.dim}, but "
            f"embedding.dim={expected}"
        )
    return source


# --- the cache format -----------------------------------------------------------------------

CACHE_FILES = ["vectors.npy", "words.txt"]


def write_cache(directory: Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """Write atomically, with a manifest of each file's size and sha256: a reader never sees a
    half-written cache, and a cache damaged later is noticed. The staging dir never outlives a
    failure (io.write_atomic)."""

    def fill(staging: Path) -> list[str]:
        np.save(staging / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        (staging / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        return CACHE_FILES

    write_checked_cache(directory, fill)


def read_cache(directory: Path, name: str) -> PretrainedVectors:
    try:
        vectors = np.load(directory / "vectors.npy", mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise EmbcompareError(
            f"{directory / 'vectors.npy'}: not a readable array ({error})"
        ) from None
    words = (directory / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    if len(words) != len(vectors):
        raise EmbcompareError(
            f"{directory}: cache holds {len(words)} words but {len(vectors)} vectors; delete it"
        )
    return PretrainedVectors(name, words, vectors)


FASTTEXT_MODEL_FILE = "model.bin"  # beside the whole-word vectors of a fastText pretraining


@register_format("npy_words")
def load_npy_words(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    """Our own cache layout, as written by `write_cache` (also what `embcompare pretrain` makes).
    A fastText pretraining also leaves its model there as model.bin: its n-grams are read
    only when a run asks for them (embedding.unseen=subwords)."""
    directory = Path(cfg["path"]).expanduser()
    if not (directory / "vectors.npy").is_file():
        raise EmbcompareError(f"embedding.path={directory}: no vectors.npy there")
    if (directory / MANIFEST).is_file() and (problem := manifest_problem(directory)):
        raise EmbcompareError(f"embedding.path={directory}: {problem}; the vectors are damaged")
    source = read_cache(directory, cfg["name"])
    model = directory / FASTTEXT_MODEL_FILE
    if model.is_file():
        source.subwords = SubwordVectors(model, f"embedding.path={directory}: {model.name}")
    return source


@register_format("fasttext_bin")
def load_fasttext_model(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    """A fastText model in Facebook's .bin format (fastText's own, or `embcompare pretrain`'s
    model.bin), read by gensim: its word list with whole-word vectors, and its n-grams."""
    path = Path(str(cfg.get("path") or "")).expanduser()
    where = f"embedding.path={str(path)!r}"
    keyed = load_fasttext_bin(path, where)
    return PretrainedVectors(
        cfg["name"], list(keyed.index_to_key), keyed.vectors, SubwordVectors(path, where, keyed)
    )


@register_format("npy_parquet")
def load_npy_parquet(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    """Vectors shipped in a Python package as an .npy array and a parquet word column."""
    import pyarrow.parquet as pq

    try:
        root = importlib.resources.files(cfg["package"]) / cfg.get("package_dir", "data")
    except ModuleNotFoundError:
        raise EmbcompareError(
            f"embedding.package={cfg['package']!r} is not installed; run `make setup`"
        ) from None
    vectors = np.load(Path(str(root / cfg["vectors_file"])), mmap_mode="r", allow_pickle=False)
    words = pq.read_table(str(root / cfg["vocab_file"]), columns=[cfg["vocab_column"]])
    words = words.column(cfg["vocab_column"]).to_pylist()
    if len(words) != len(vectors):
        raise EmbcompareError(
            f"embedding {cfg['name']}: {len(words)} words but {len(vectors)} vectors"
        )
    return PretrainedVectors(cfg["name"], words, vectors)


@register_format("word2vec_binary", "word2vec_text", "fasttext_vec", "glove_text")
def load_vectors_file(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    """Parse a vectors file once into the cache; a cache that fails its manifest check is
    rebuilt, with a warning that names it."""
    path = Path(str(cfg.get("path") or "")).expanduser()
    if not path.is_file():
        raise EmbcompareError(f"embedding.path={str(path)!r}: no such vectors file")
    directory = cache_dir / "vectors" / f"{cfg['name']}-{_file_key(path)}"
    if directory.exists() and (problem := manifest_problem(directory)):
        log.warning("vectors cache %s: %s; rebuilding it from %s", directory, problem, path)
    elif directory.exists():
        return read_cache(directory, cfg["name"])
    if cfg["format"] == "word2vec_binary":
        words, vectors = _parse_binary_with_gensim(path)
    else:
        words, vectors = parse_text_vectors(path, cfg["format"])
    write_cache(directory, words, vectors)
    return read_cache(directory, cfg["name"])


def _file_key(path: Path) -> str:
    """Identify a file by path, size and modification time: hashing GBs on every run is too slow."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_maybe_gzip(path: Path):
    """A binary handle on the file's content, gunzipped when it starts with gzip's magic bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _header(fields: list[bytes]) -> tuple[int, int] | None:
    """(count, dim) when a first line is word2vec's 'count dim' header."""
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def _looks_like_vector_line(fields: list[bytes]) -> bool:
    try:
        [float(f) for f in fields[1:]]
    except ValueError:
        return False
    return len(fields) > 2


def parse_text_vectors(path: Path, file_format: str) -> tuple[list[str], np.ndarray]:
    """word2vec/fastText text (a 'count dim' header line) or GloVe text (no header): one word and
    its numbers per line. Every problem names the file and line. A word seen again keeps its
    first vector, as gensim does, with a warning that counts the repeats."""
    with open_maybe_gzip(path) as handle:
        first = handle.readline()
        if not first.strip():
            what = "empty" if not first else "blank on line 1"
            raise EmbcompareError(f"{path}: file is {what}; expected {file_format} vectors")
        fields = first.split()
        header = _header(fields)
        if file_format == "glove_text" and header:
            raise EmbcompareError(
                f"{path}: line 1: {first.strip().decode(errors='replace')!r} is a word2vec "
                "header, not a GloVe line; set embedding.format=word2vec_text"
            )
        if file_format != "glove_text" and header is None:
            likely = (
                "it looks like GloVe text: set embedding.format=glove_text"
                if _looks_like_vector_line(fields)
                else "is it word2vec binary? then set embedding.format=word2vec_binary"
            )
            raise EmbcompareError(
                f"{path}: line 1: expected a 'count dim' header for {file_format}; {likely}"
            )
        if header:
            declared, dim, lines, number = header[0], header[1], handle, 2
        else:
            declared, dim, lines, number = None, len(fields) - 1, _prepend(first, handle), 1
        words, rows, repeats = _parse_lines(path, lines, number, dim, declared)
    if declared is not None and len(words) + repeats != declared:
        raise EmbcompareError(
            f"{path}: the header declares {declared} words but the file has "
            f"{len(words) + repeats} vector lines (truncated?)"
        )
    if not words:
        raise EmbcompareError(f"{path}: no vectors after the header line")
    if repeats:
        log.warning("%s: %d repeated word(s); each keeps its first vector", path, repeats)
    return words, np.vstack(rows)


def _prepend(first: bytes, rest):
    yield first
    yield from rest


def _parse_lines(path, lines, first_number, dim, declared):
    words, rows, seen, repeats = [], [], set(), 0
    for number, raw in enumerate(
        tqdm(lines, total=declared, desc=f"parsing {path.name}", unit="words", leave=False),
        start=first_number,
    ):
        try:
            line = raw.decode("utf-8").rstrip("\r\n ")
        except UnicodeDecodeError:
            raise EmbcompareError(
                f"{path}: line {number}: bytes are not valid UTF-8 (if the file is binary "
                "word2vec, set embedding.format=word2vec_binary)"
            ) from None
        if not line:
            continue
        word, _, numbers = line.partition(" ")
        try:
            vector = np.fromstring(numbers, dtype=np.float32, sep=" ")
        except ValueError:  # something that is not a number
            vector = np.zeros(0)
        if len(vector) != dim:
            raise EmbcompareError(f"{path}: line {number}: {_line_problem(numbers, dim)}")
        if not np.isfinite(vector).all():
            raise EmbcompareError(
                f"{path}: line {number}: word {word!r} has a value that is not a finite "
                "float32 number (nan, inf or beyond 3.4e38)"
            )
        if word in seen:
            repeats += 1
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    return words, rows, repeats


def _line_problem(numbers: str, dim: int) -> str:
    parts = numbers.split(" ") if numbers else []
    for part in parts:
        try:
            float(part)
        except ValueError:
            return f"not a number ({part!r})"
    return f"expected a word and {dim} numbers, found {len(parts)} numbers"


def _parse_binary_with_gensim(path: Path) -> tuple[list[str], np.ndarray]:
    from gensim.models import KeyedVectors

    # gensim reads from a pipe we feed: that gives a progress bar and reads .gz files as well
    read_end, write_end = os.pipe()
    feeder = threading.Thread(target=_feed, args=(path, write_end), daemon=True)
    feeder.start()
    try:
        kv = KeyedVectors.load_word2vec_format(f"/dev/fd/{read_end}", binary=True)
    except (ValueError, EOFError, UnicodeDecodeError, TypeError) as error:
        raise EmbcompareError(_diagnose_binary(path, error)) from None
    finally:
        os.close(read_end)
        feeder.join()
    finite = np.isfinite(kv.vectors).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise EmbcompareError(
            f"{path}: vector {row + 1} (word {kv.index_to_key[row]!r}) has a value that is not "
            "finite (nan or inf)"
        )
    return list(kv.index_to_key), kv.vectors


def _feed(path: Path, write_end: int) -> None:
    size = path.stat().st_size
    with (
        os.fdopen(write_end, "wb") as pipe,
        open_maybe_gzip(path) as source,
        tqdm(
            total=size, unit="B", unit_scale=True, desc=f"parsing {path.name}", leave=False
        ) as bar,
    ):
        try:
            while chunk := source.read(1 << 20):
                pipe.write(chunk)
                bar.update(len(chunk))
        except BrokenPipeError:  # the parser stopped early, on an error of its own
            pass


def _diagnose_binary(path: Path, error: Exception) -> str:
    with open_maybe_gzip(path) as handle:
        first = handle.readline()
    if not first:
        return f"{path}: file is empty; expected word2vec_binary vectors"
    if _header(first.split()) is None:
        likely = (
            "it looks like GloVe text: set embedding.format=glove_text"
            if _looks_like_vector_line(first.split())
            else "it is not word2vec binary"
        )
        return f"{path}: line 1: expected a 'count dim' header; {likely}"
    try:
        (first + _leading_bytes(path)).decode("utf-8")
        return (
            f"{path}: cannot parse as word2vec_binary ({error}); it looks like text: set "
            "embedding.format=word2vec_text"
        )
    except UnicodeDecodeError:
        return f"{path}: cannot parse as word2vec_binary ({error}); truncated or damaged?"


def _leading_bytes(path: Path, size: int = 4096) -> bytes:
    with open_maybe_gzip(path) as handle:
        return handle.read(size)


# --- the embedding matrix of a run --------------------------------------------------------


@dataclass
class Coverage:
    types: float
    tokens: float

    def as_dict(self) -> dict[str, float]:
        return {"coverage_types": self.types, "coverage_tokens": self.tokens}


KERAS_DEFAULT_SCALE = 0.05  # keras.layers.Embedding's default initializer, U(-0.05, 0.05)
INIT_SCALES = ("keras", "variance_matched")


def uniform_scale(source: PretrainedVectors) -> float:
    """Kim's a for `source` (PretrainedVectors.variance_matched_half_width)."""
    return source.variance_matched_half_width


def init_half_width(init_scale, source: PretrainedVectors, where: str = "init_scale") -> float:
    """The a of U(-a, a) for random rows: 'keras' (0.05, what `Embedding(V, d)` gives),
    'variance_matched' (Kim's a, see `uniform_scale`) or a positive number."""
    if init_scale == "keras":
        return KERAS_DEFAULT_SCALE
    if init_scale == "variance_matched":
        return uniform_scale(source)
    try:
        scale = float(init_scale)
    except (TypeError, ValueError):
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0) or isinstance(init_scale, bool):
        raise EmbcompareError(
            f"{where}={init_scale!r} must be one of {list(INIT_SCALES)} or a positive number"
        )
    return scale


UNSEEN_POLICIES = ("random", "subwords")


def unseen_policy(policy: str, source: PretrainedVectors) -> str:
    """`embedding.unseen`, checked against the source: 'subwords' needs character n-grams."""
    if policy not in UNSEEN_POLICIES:
        raise EmbcompareError(f"embedding.unseen={policy!r} must be one of {list(UNSEEN_POLICIES)}")
    if policy == "subwords" and (source.subwords is None or not source.subwords.has_ngrams):
        raise EmbcompareError(
            f"embedding.unseen=subwords: {source.name} has no character n-grams to build vectors "
            "of unseen words from; use a fastText model (embedding.format=fasttext_bin, or a "
            "fastText pretraining's directory holding model.bin) or embedding.unseen=random"
        )
    return policy


def has_vector(source: PretrainedVectors, word: str, unseen: str) -> bool:
    """Whether the source gives `word` a vector: it lists the word, or (with 'subwords') the
    word has character n-grams."""
    if source.row_of(word) is not None:
        return True
    return unseen == "subwords" and source.subwords is not None and source.subwords.covers(word)


def build_matrix(
    vocab: Vocabulary,
    source: PretrainedVectors,
    init: str,
    seed: int,
    init_scale="variance_matched",
    where: str = "setup channel",
    unseen: str = "random",
) -> np.ndarray:
    """One row per vocabulary word. `init` is 'pretrained' or 'random'.

    Rows that the source lacks (and every row, for 'random') get U(-a, a), with a from
    `init_scale` (see `init_half_width`), unless `unseen` is 'subwords': then a pretrained
    channel gives words outside the source's list their n-gram vector. Padding and unknown rows
    stay zero so they add nothing to a sentence.
    """
    if init not in ("pretrained", "random"):
        raise EmbcompareError(f"{where} init={init!r} must be 'pretrained' or 'random'")
    rng = np.random.default_rng(seed)
    scale = init_half_width(init_scale, source, f"{where} init_scale")
    # drawn for every row whatever the policy, so each policy leaves the others' rows as they are
    matrix = rng.uniform(-scale, scale, size=(len(vocab), source.dim)).astype(np.float32)
    if init == "pretrained":
        _copy_source_rows(matrix, vocab, source, unseen)
    matrix[[PAD_ID, UNK_ID]] = 0.0
    return matrix


def _copy_source_rows(
    matrix: np.ndarray, vocab: Vocabulary, source: PretrainedVectors, unseen: str
) -> None:
    """Rows of the words the source lists; with 'subwords', rows of the others from n-grams."""
    rows = [(i, source.row_of(w)) for i, w in enumerate(vocab.words) if i > UNK_ID]
    found = [(i, r) for i, r in rows if r is not None]
    if found:
        ours, theirs = map(np.array, zip(*found, strict=True))
        matrix[ours] = source.vectors[theirs]
    if unseen == "subwords":
        unlisted = [i for i, r in rows if r is None and source.subwords.covers(vocab.words[i])]
        if unlisted:
            matrix[unlisted] = source.subwords.vectors_for([vocab.words[i] for i in unlisted])


def coverage(train_tokens: Iterable[Sequence[str]], source: PretrainedVectors) -> Coverage:
    """Share of training word types, and of training tokens, that the source has vectors for."""
    counts = Counter(t for tokens in train_tokens for t in tokens)
    if not counts:
        return Coverage(0.0, 0.0)
    known = {w for w in counts if source.row_of(w) is not None}
    total = sum(counts.values())
    return Coverage(len(known) / len(counts), sum(counts[w] for w in known) / total)
