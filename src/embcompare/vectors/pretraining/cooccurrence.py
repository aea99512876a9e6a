"""GloVe's co-occurrence counts: how often, and how near, each pair of words occurs.

As glove.c's cooccur counts them: every pair of tokens at most `window` apart in the same
document adds 1/distance to both X[a, b] and X[b, a] (a symmetric window), so X is symmetric and
a word next to itself adds 2 to its diagonal. Tokens are those of `encode_corpus`: words rarer
than min_count are already gone from the text, as glove.c skips out-of-vocabulary words, which
brings their neighbours closer.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from embcompare.vectors.pretraining.corpus import EncodedCorpus

CHUNK_TOKENS = 1_000_000  # tokens paired at once: `window` times as many entries before summing


def count_cooccurrences(
    corpus: EncodedCorpus, window: int, chunk_tokens: int = CHUNK_TOKENS
) -> scipy.sparse.csr_matrix:
    """X as a `corpus.rows` x `corpus.rows` CSR matrix of float64 (row and column 0, padding,
    stay empty).

    Each chunk of tokens is paired with the `window` tokens after it, one vectorised slice per
    distance, and summed into a CSR matrix before the next chunk: memory follows the distinct
    pairs, not the corpus length. Only pairs (earlier, later) are counted; adding the transpose
    at the end makes the window symmetric at half the work.
    """
    size = len(corpus.ids)
    forward = scipy.sparse.csr_matrix((corpus.rows, corpus.rows), dtype=np.float64)
    for start in range(0, size, chunk_tokens):
        # the slice reaches `window` tokens past the chunk so pairs across its end are counted,
        # each once: the earlier token of a pair is always inside the chunk
        stop = min(start + chunk_tokens, size)
        ids = corpus.ids[start : stop + window]
        documents = corpus.documents[start : stop + window]
        forward = forward + _forward_counts(ids, documents, stop - start, window, corpus.rows)
    return (forward + forward.T).tocsr()


def _forward_counts(
    ids: np.ndarray, documents: np.ndarray, earlier: int, window: int, rows: int
) -> scipy.sparse.csr_matrix:
    """1/distance summed over pairs (ids[i], ids[i + d]) with i < `earlier`, 1 <= d <= window,
    both in the same document."""
    firsts, seconds, weights = [], [], []
    for distance in range(1, window + 1):
        pairs = max(0, min(earlier, len(ids) - distance))  # none when the slice is too short
        same_document = documents[:pairs] == documents[distance : distance + pairs]
        firsts.append(ids[:pairs][same_document])
        seconds.append(ids[distance : distance + pairs][same_document])
        weights.append(np.full(len(firsts[-1]), 1.0 / distance))
    entries = (np.concatenate(weights), (np.concatenate(firsts), np.concatenate(seconds)))
    # COO -> CSR sums repeated pairs (scipy's conversion adds duplicates)
    counts = scipy.sparse.coo_matrix(entries, shape=(rows, rows)).tocsr()
    counts.sum_duplicates()
    return counts


def top_words(matrix: scipy.sparse.csr_matrix, count: int | None) -> scipy.sparse.csr_matrix:
    """X restricted to the `count` most frequent words (rows 1..count of `encode_corpus`'s ids,
    which run by falling frequency), padding row kept; None keeps all."""
    if count is None or count >= matrix.shape[0] - 1:
        return matrix
    return matrix[: count + 1, : count + 1].tocsr()
