"""GloVe in Keras: co-occurrence counts."""

import numpy as np
import pytest

from embcompare.vectors.pretraining.cooccurrence import count_cooccurrences, top_words
from embcompare.vectors.pretraining.corpus import encode_corpus

# --- co-occurrence counts ------------------------------------------------------------------


@pytest.mark.parametrize("chunk_tokens", [1, 2, 3, 1000])
def test_counts_weigh_each_pair_by_one_over_distance_in_both_directions(chunk_tokens):
    # ids by falling count, ties alphabetical: a=1, b=2, c=3
    corpus = encode_corpus([["a", "b", "a", "c"], ["b", "c"]], min_count=1)
    assert corpus.words == ["a", "b", "c"]
    counts = count_cooccurrences(corpus, window=2, chunk_tokens=chunk_tokens).toarray()
    # document 1, distance 1: (a,b) (b,a) (a,c), 1 each; distance 2: (a,a) (b,c), 1/2 each;
    # document 2: (b,c), 1. No pair spans the two documents (c then b).
    # Each pair counts in both directions, so a beside itself adds 2 x 1/2 to X[a, a].
    expected = np.array(
        [
            [0, 0, 0, 0],
            [0, 1.0, 1 + 1, 1],
            [0, 1 + 1, 0, 0.5 + 1],
            [0, 1, 0.5 + 1, 0],
        ]
    )
    np.testing.assert_array_equal(counts, expected)


def test_counts_stop_at_the_window_and_skip_dropped_rare_words():
    # "x" occurs once: min_count=2 drops it, so the two a's become neighbours, as in glove.c
    corpus = encode_corpus([["a", "b", "x", "a", "b"]], min_count=2)
    counts = count_cooccurrences(corpus, window=1).toarray()
    a, b = 1, 2
    # a b a b at distance 1 only: (a,b) twice and (b,a) once, each in both directions
    assert counts[a, b] == counts[b, a] == 3.0
    assert counts[a, a] == counts[b, b] == 0.0


def test_top_words_keeps_the_most_frequent_rows_and_columns():
    corpus = encode_corpus([["a", "a", "a", "b", "b", "c"]], min_count=1)
    counts = count_cooccurrences(corpus, window=2)
    kept = top_words(counts, 2)
    assert kept.shape == (3, 3)
    np.testing.assert_array_equal(kept.toarray(), counts.toarray()[:3, :3])
    assert top_words(counts, None) is counts and top_words(counts, 10) is counts
