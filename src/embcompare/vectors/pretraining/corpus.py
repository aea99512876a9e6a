"""The corpus as word ids, and the word distributions word2vec samples from: which tokens
subsampling keeps, and which noise words negative sampling draws."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embcompare.errors import EmbcompareError

PAD_ID = 0


@dataclass
class EncodedCorpus:
    """Word ids (1-based: row 0 is padding) of the in-vocabulary tokens, with document ids."""

    words: list[str]  # the word of row i + 1, most frequent first
    counts: np.ndarray  # count of row i + 1
    ids: np.ndarray
    documents: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.words) + 1


def encode_corpus(documents: Sequence[Sequence[str]], min_count: int) -> EncodedCorpus:
    """Words seen `min_count` times or more, by falling count (ties alphabetical); rarer words
    are dropped from the text, as word2vec does, which widens the windows around them."""
    counts = Counter(token for tokens in documents for token in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if not words:
        raise EmbcompareError(f"min_count={min_count}: no word of the corpus occurs that often")
    row = {w: i for i, w in enumerate(words, start=1)}
    ids, doc_ids = [], []
    for number, tokens in enumerate(documents):
        encoded = np.fromiter((row.get(t, PAD_ID) for t in tokens), np.int32, len(tokens))
        encoded = encoded[encoded != PAD_ID]
        ids.append(encoded)
        doc_ids.append(np.full(len(encoded), number, np.int32))
    return EncodedCorpus(
        words=words,
        counts=np.array([counts[w] for w in words], dtype=np.int64),
        ids=np.concatenate(ids),
        documents=np.concatenate(doc_ids),
    )


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: P(keep) per row, 1 for words below the `sample` share."""
    keep = np.ones(len(counts) + 1)
    if sample > 0:
        threshold = sample * counts.sum()
        keep[1:] = np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)
    return keep


class NoiseSampler:
    """Noise words drawn from counts ** 0.75; the padding row has probability zero."""

    def __init__(self, counts: np.ndarray, power: float = 0.75):
        weights = np.asarray(counts, dtype=np.float64) ** power
        self.cumulative = np.cumsum(weights)

    def draw(self, shape, rng: np.random.Generator) -> np.ndarray:
        points = rng.random(shape) * self.cumulative[-1]
        # `right`: a point on a boundary belongs to the next word; the minimum guards against
        # a product rounding up to the total
        rows = np.searchsorted(self.cumulative, points, side="right")
        return (np.minimum(rows, len(self.cumulative) - 1) + 1).astype(np.int32)
