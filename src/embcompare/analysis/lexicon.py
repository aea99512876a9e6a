"""A human-rated polarity lexicon: the labels of the lexicon probes and of the perturbed test set.

By default it is VADER's `vader_lexicon.txt` as shipped in the PyPI package vaderSentiment
3.3.2 (MIT licence; Hutto & Gilbert 2014): about 7,500 entries, each rated by ten people from
-4 (extremely negative) to +4 (extremely positive). A file line is

    token<TAB>mean rating<TAB>standard deviation<TAB>[the ten ratings]

Only the first two fields are read. Multi-word entries ("fed up") are left out, since a single
token never matches them, and so are entries without a letter: emoticons, which the tokenizer
removes, and chat numbers (143 "I love you", 86 "throw out") that in reviews are just numbers.
A word's label is the sign of its mean rating (1 positive, 0 negative); words whose |mean| is
below `min_abs_rating` are neither and are left out. These labels come from people, not from
the training labels, so a probe on them is not circular.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

from embcompare.data.datasets import numbered_lines
from embcompare.errors import EmbcompareError

VADER_PACKAGE = "vaderSentiment"
VADER_FILE = "vader_lexicon.txt"


@dataclass(frozen=True)
class Lexicon:
    path: Path
    ratings: dict[str, float]  # lowercased word -> mean human rating

    def polar(self, min_abs_rating: float) -> dict[str, int]:
        """Word -> 1 (positive) or 0 (negative), for words rated at least this far from 0."""
        return {
            word: int(rating > 0)
            for word, rating in self.ratings.items()
            if abs(rating) >= min_abs_rating and rating != 0
        }


def vader_path() -> Path:
    """Where the installed vaderSentiment package keeps its lexicon."""
    try:
        root = importlib.resources.files(VADER_PACKAGE)
    except ModuleNotFoundError:
        raise EmbcompareError(
            f"the polarity lexicon needs the package {VADER_PACKAGE}==3.3.2; run `make setup`"
        ) from None
    return Path(str(root / VADER_FILE))


def load_lexicon(path: str | Path | None) -> Lexicon:
    """The lexicon file at `path`, or VADER's when `path` is None (read once per process)."""
    return _read_cached(str(Path(path).expanduser().absolute()) if path else str(vader_path()))


@functools.lru_cache(maxsize=2)
def _read_cached(path: str) -> Lexicon:
    return read_lexicon(Path(path))


def read_lexicon(path: Path) -> Lexicon:
    """token<TAB>mean rating[<TAB>...] per line; a malformed line is an error naming it."""
    if not path.is_file():
        raise EmbcompareError(f"semantic.lexicon.path={str(path)!r}: no such lexicon file")
    ratings: dict[str, float] = {}
    for number, line in numbered_lines(path, "utf-8", encoding_key=None):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            raise EmbcompareError(
                f"{path}: line {number}: expected token<TAB>mean rating, found {line!r}"
            )
        try:
            rating = float(fields[1])
        except ValueError:
            rating = math.nan
        if not math.isfinite(rating):
            raise EmbcompareError(f"{path}: line {number}: rating {fields[1]!r} is not a number")
        word = fields[0].strip().lower()
        if " " not in word and any(c.isalpha() for c in word):
            ratings[word] = rating
    if not ratings:
        raise EmbcompareError(f"{path}: no lexicon entries in the file")
    return Lexicon(path, ratings)
