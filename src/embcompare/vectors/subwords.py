"""fastText's subwords: the character n-grams of a word, the bucket each hashes to, and a model
in Facebook's `.bin` format that gives any word a vector from its n-grams.

fastText (Bojanowski et al. 2017) represents a word by the word itself and its character
n-grams: the word is wrapped in '<' and '>' and every run of `min_n`..`max_n` characters
(UTF-8 characters, not bytes) is an n-gram, the whole wrapped word included when short enough.
An n-gram's row is the FNV-1a hash of its UTF-8 bytes modulo `bucket`, so n-grams share rows
when they collide. A word's vector is the mean of its own row and its n-grams' rows; a word
outside the word list gets the mean of its n-grams' rows alone (gensim's
`FastTextKeyedVectors.get_vector`).
"""

from __future__ import annotations

import mmap
import struct
from functools import cached_property
from pathlib import Path

import numpy as np

from embcompare.errors import EmbcompareError

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619
UINT32 = 0xFFFFFFFF


def char_ngrams(word: str, min_n: int, max_n: int) -> list[bytes]:
    """The UTF-8 bytes of each n-gram of '<word>', by start position then length, as fastText's
    Dictionary::computeSubwords lists them (a repeated n-gram is listed each time)."""
    wrapped = f"<{word}>".encode()
    starts = [i for i, byte in enumerate(wrapped) if not _continues_a_character(byte)]
    ends = [*starts[1:], len(wrapped)]  # the end of the character starting at starts[k]
    ngrams = []
    for first, start in enumerate(starts):
        for length in range(1, max_n + 1):
            last = first + length - 1
            if last >= len(starts):
                break
            # a lone '<' or '>' says only that a word starts or ends: fastText skips it
            is_lone_marker = length == 1 and (start == 0 or ends[last] == len(wrapped))
            if length >= min_n and not is_lone_marker:
                ngrams.append(wrapped[start : ends[last]])
    return ngrams


def _continues_a_character(byte: int) -> bool:
    return byte & 0xC0 == 0x80  # 10xxxxxx: a continuation byte of a multi-byte character


def fnv1a_hash(data: bytes) -> int:
    """32-bit FNV-1a as fastText computes it: each byte is read as a signed char, so bytes from
    0x80 up enter the xor sign-extended (0xFFFFFF80 ...). gensim reproduces this quirk."""
    value = FNV_OFFSET_BASIS
    for byte in data:
        signed = byte - 256 if byte >= 128 else byte
        value = ((value ^ (signed & UINT32)) * FNV_PRIME) & UINT32
    return value


def ngram_buckets(word: str, min_n: int, max_n: int, bucket: int) -> list[int]:
    """The n-gram rows of `word` (0 .. bucket - 1), in `char_ngrams` order."""
    return [fnv1a_hash(ngram) % bucket for ngram in char_ngrams(word, min_n, max_n)]


# --- models in Facebook's .bin format -------------------------------------------------------

FASTTEXT_MAGIC = 793712314  # the first int32 of every .bin written by fastText since 2017
HEADER = "=2i12id"  # magic, version; dim, ws, epoch, minCount, neg, wordNgrams, loss, model,
# bucket, minn, maxn, lrUpdateRate; t (fastText's args.cc, native byte order, no padding)
VOCAB_SIZES = "=3i2q"  # words + labels, words, labels, tokens, pruned-index size
WORD_TAIL = "=qb"  # after each word's NUL-terminated bytes: its count and its entry type
MATRIX_HEADER = "=?2q"  # quantized?, rows, columns


class _Truncated(Exception):
    pass


class _Cursor:
    """Reads a memory-mapped file field by field and stops with _Truncated at its end (gensim's
    reader would loop forever on a vocabulary cut short)."""

    def __init__(self, data) -> None:
        self.data, self.position = data, 0

    def take(self, layout: str) -> tuple:
        size = struct.calcsize(layout)
        if self.position + size > len(self.data):
            raise _Truncated
        values = struct.unpack_from(layout, self.data, self.position)
        self.position += size
        return values

    def skip_word(self) -> None:
        end = self.data.find(b"\0", self.position)
        if end < 0:
            raise _Truncated
        self.position = end + 1
        self.take(WORD_TAIL)

    def skip(self, size: int) -> None:
        if self.position + size > len(self.data):
            raise _Truncated
        self.position += size


def fasttext_bin_problem(path: Path) -> str | None:
    """Why `path` is no complete unsupervised fastText .bin model; None when it is one.

    Walks the header and the vocabulary and checks that the file holds every float of both
    matrices: gensim reads only the first, but a file cut short anywhere is damaged."""
    if not path.is_file():
        return "no such file"
    if path.stat().st_size < struct.calcsize(HEADER):
        return "not a fastText .bin model: too short for its header"
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        cursor = _Cursor(data)
        header = cursor.take(HEADER)
        if header[0] != FASTTEXT_MAGIC:
            return (
                "not a fastText .bin model (it does not start with fastText's magic number); "
                "fastText's .vec text is embedding.format=fasttext_vec"
            )
        try:
            return _body_problem(cursor, dim=header[2])
        except _Truncated:
            return f"truncated: it ends at byte {len(data)}, before the vectors it declares"


def _body_problem(cursor: _Cursor, dim: int) -> str | None:
    entries, _, labels, _, pruned = cursor.take(VOCAB_SIZES)
    if labels > 0:
        return "a supervised fastText model (it holds labels), not word vectors"
    for _ in range(entries):
        cursor.skip_word()
    cursor.take(f"={max(pruned, 0) * 2}i")
    for matrix in ("input", "output"):  # words and n-grams, then the output vectors
        quantized, rows, columns = cursor.take(MATRIX_HEADER)
        if quantized:
            return "a quantized fastText model (.ftz), which gensim cannot read"
        if columns != dim:
            return f"its {matrix} matrix has {columns} columns but its header says dim {dim}"
        cursor.skip(rows * columns * 4)
    return None


def load_fasttext_bin(path: Path, where: str):
    """gensim's FastTextKeyedVectors of a .bin model; any problem is one line naming `where`."""
    from gensim.models.fasttext import load_facebook_vectors

    problem = fasttext_bin_problem(path)
    if problem is None:
        try:
            return load_facebook_vectors(str(path))
        except (ValueError, AssertionError, NotImplementedError, EOFError, struct.error) as error:
            problem = f"gensim cannot read it ({type(error).__name__}: {error})"
    raise EmbcompareError(f"{where}: {problem}")


class SubwordVectors:
    """Vectors built from character n-grams for words a source's word list lacks: a fastText
    .bin model, read by gensim when first asked (the n-gram table is large: bucket x dim)."""

    def __init__(self, path: Path, where: str, keyed=None) -> None:
        self.path, self.where = Path(path), where
        if keyed is not None:
            self.__dict__["keyed"] = keyed  # already loaded: fills the cached property

    @cached_property
    def keyed(self):
        return load_fasttext_bin(self.path, self.where)

    @property
    def has_ngrams(self) -> bool:
        keyed = self.keyed
        return keyed.bucket > 0 and keyed.max_n >= keyed.min_n

    def covers(self, word: str) -> bool:
        """Whether `word` has an n-gram at all (a 1-letter word has none when min_n > 3)."""
        return bool(char_ngrams(word, self.keyed.min_n, self.keyed.max_n))

    def vectors_for(self, words: list[str]) -> np.ndarray:
        """gensim's vector of each word: the mean of its n-grams' rows when it is not listed."""
        rows = [self.keyed.get_vector(word) for word in words]
        return np.array(rows, dtype=np.float32).reshape(len(words), self.keyed.vector_size)
