"""Pretrained word vectors and the embedding matrix of a run.

Every source, whatever its file format, is converted once into a cache of `vectors.npy` plus
`words.txt`; later loads memory-map the array, which takes well under a second for 400k x 50.
gensim parses the original formats (word2vec binary/text, fastText .vec, GloVe text). Within a
process a source is loaded once: the runs of a sweep share it (`forget_loaded` empties that memo).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
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
from embcompare.io import write_atomic


@dataclass
class PretrainedVectors:
    name: str
    words: list[str]
    vectors: np.ndarray

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

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


def write_cache(directory: Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """Write atomically: a reader never sees a half-written cache."""

    def fill(staging: Path) -> None:
        staging.mkdir()
        np.save(staging / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        (staging / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")

    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(directory, fill)
    except OSError:
        if not (directory / "words.txt").is_file():
            raise
        # another process finished the same cache first


def read_cache(directory: Path, name: str) -> PretrainedVectors:
    vectors = np.load(directory / "vectors.npy", mmap_mode="r")
    words = (directory / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    if len(words) != len(vectors):
        raise EmbcompareError(
            f"{directory}: cache holds {len(words)} words but {len(vectors)} vectors; delete it"
        )
    return PretrainedVectors(name, words, vectors)


@register_format("npy_words")
def load_npy_words(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    """Our own cache layout, as written by `write_cache` (also what `embcompare pretrain` makes)."""
    directory = Path(cfg["path"]).expanduser()
    if not (directory / "vectors.npy").is_file():
        raise EmbcompareError(f"embedding.path={directory}: no vectors.npy there")
    return read_cache(directory, cfg["name"])


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
    vectors = np.load(Path(str(root / cfg["vectors_file"])), mmap_mode="r")
    words = pq.read_table(str(root / cfg["vocab_file"]), columns=[cfg["vocab_column"]])
    words = words.column(cfg["vocab_column"]).to_pylist()
    if len(words) != len(vectors):
        raise EmbcompareError(
            f"embedding {cfg['name']}: {len(words)} words but {len(vectors)} vectors"
        )
    return PretrainedVectors(cfg["name"], words, vectors)


@register_format("word2vec_binary", "word2vec_text", "fasttext_vec", "glove_text")
def load_with_gensim(cfg: dict, cache_dir: Path) -> PretrainedVectors:
    path = Path(str(cfg.get("path") or "")).expanduser()
    if not path.is_file():
        raise EmbcompareError(f"embedding.path={str(path)!r}: no such vectors file")
    directory = cache_dir / "vectors" / f"{cfg['name']}-{_file_key(path)}"
    if not (directory / "vectors.npy").is_file():
        words, vectors = _parse_with_gensim(path, cfg["format"])
        write_cache(directory, words, vectors)
    return read_cache(directory, cfg["name"])


def _file_key(path: Path) -> str:
    """Identify a file by path, size and modification time: hashing GBs on every run is too slow."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_with_gensim(path: Path, file_format: str) -> tuple[list[str], np.ndarray]:
    from gensim.models import KeyedVectors

    binary = file_format == "word2vec_binary"
    header = _glove_header(path) if file_format == "glove_text" else b""
    # gensim reads from a pipe we feed: that gives a progress bar and lets a GloVe file,
    # which has no header line, be parsed in one pass
    read_end, write_end = os.pipe()
    feeder = threading.Thread(target=_feed, args=(path, header, write_end), daemon=True)
    feeder.start()
    try:
        kv = KeyedVectors.load_word2vec_format(f"/dev/fd/{read_end}", binary=binary)
    except (ValueError, EOFError, UnicodeDecodeError) as error:
        raise EmbcompareError(_diagnose(path, file_format, error)) from None
    finally:
        os.close(read_end)
        feeder.join()
    return list(kv.index_to_key), kv.vectors


def _glove_header(path: Path) -> bytes:
    lines, dim = 0, None
    with open(path, "rb") as handle:
        first = handle.readline()
        dim = len(first.rstrip().split(b" ")) - 1
        handle.seek(0)
        while chunk := handle.read(1 << 22):
            lines += chunk.count(b"\n")
    return f"{lines} {dim}\n".encode()


def _feed(path: Path, header: bytes, write_end: int) -> None:
    size = path.stat().st_size
    with (
        os.fdopen(write_end, "wb") as pipe,
        open(path, "rb") as source,
        tqdm(
            total=size, unit="B", unit_scale=True, desc=f"parsing {path.name}", leave=False
        ) as bar,
    ):
        try:
            pipe.write(header)
            while chunk := source.read(1 << 20):
                pipe.write(chunk)
                bar.update(len(chunk))
        except BrokenPipeError:  # the parser stopped early, on an error of its own
            pass


def _diagnose(path: Path, file_format: str, error: Exception) -> str:
    """Find the first malformed line so the message can name it; gensim's often does not."""
    if file_format != "word2vec_binary":
        with open(path, "rb") as handle:
            first = handle.readline()
            skip_header = file_format != "glove_text"
            dim = int(first.split()[1]) if skip_header else len(first.rstrip().split(b" ")) - 1
            if not skip_header:
                handle.seek(0)
            for number, line in enumerate(handle, start=2 if skip_header else 1):
                problem = _line_problem(line, dim)
                if problem:
                    return f"{path}: line {number}: {problem}"
    return f"{path}: cannot parse as {file_format} ({error})"


def _line_problem(line: bytes, dim: int) -> str | None:
    try:
        parts = line.decode("utf-8").rstrip().split(" ")
    except UnicodeDecodeError:
        return "bytes are not valid UTF-8"
    if len(parts) - 1 != dim:
        return f"expected a word and {dim} numbers, found {len(parts) - 1} numbers"
    try:
        [float(x) for x in parts[1:]]
    except ValueError as bad:
        return f"not a number ({bad})"
    return None


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
    """Kim's rule: U(-a, a) has variance a^2/3, so a = sqrt(3 var) matches the source's variance."""
    sample = np.asarray(source.vectors[: min(len(source.vectors), 100_000)], dtype=np.float64)
    return float(np.sqrt(3.0 * sample.var()))


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


def build_matrix(
    vocab: Vocabulary,
    source: PretrainedVectors,
    init: str,
    seed: int,
    init_scale="variance_matched",
    where: str = "setup channel",
) -> np.ndarray:
    """One row per vocabulary word. `init` is 'pretrained' or 'random'.

    Rows that the source lacks (and every row, for 'random') get U(-a, a), with a from
    `init_scale` (see `init_half_width`). Padding and unknown rows stay zero so they add
    nothing to a sentence.
    """
    if init not in ("pretrained", "random"):
        raise EmbcompareError(f"{where} init={init!r} must be 'pretrained' or 'random'")
    rng = np.random.default_rng(seed)
    scale = init_half_width(init_scale, source, f"{where} init_scale")
    matrix = rng.uniform(-scale, scale, size=(len(vocab), source.dim)).astype(np.float32)
    if init == "pretrained":
        rows = [(i, source.row_of(w)) for i, w in enumerate(vocab.words)]
        found = [(i, r) for i, r in rows if r is not None and i > UNK_ID]
        if found:
            ours, theirs = map(np.array, zip(*found, strict=True))
            matrix[ours] = source.vectors[theirs]
    matrix[[PAD_ID, UNK_ID]] = 0.0
    return matrix


def coverage(train_tokens: Iterable[Sequence[str]], source: PretrainedVectors) -> Coverage:
    """Share of training word types, and of training tokens, that the source has vectors for."""
    counts = Counter(t for tokens in train_tokens for t in tokens)
    if not counts:
        return Coverage(0.0, 0.0)
    known = {w for w in counts if source.row_of(w) is not None}
    total = sum(counts.values())
    return Coverage(len(known) / len(counts), sum(counts[w] for w in known) / total)
