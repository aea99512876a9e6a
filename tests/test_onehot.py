"""Claim (c): an Embedding layer is a bias-free Dense layer on one-hot inputs, its weights
shared across positions. The test calls the claim's own computation."""

from embcompare.analysis import claims
from embcompare.analysis.verdicts import HOLDS


def test_embedding_equals_dense_on_one_hot_in_outputs_and_gradients():
    gaps = claims.one_hot_gaps(vocab=50, dim=6, batch=4, length=7)
    assert gaps["output_gap"] <= 1e-6 and gaps["gradient_gap"] <= 1e-6
    # only the ids in the batch get a gradient row: the update is row-sparse
    assert gaps["rows_with_gradient"] == gaps["distinct_ids"] < 50
    verdict = claims.one_hot_equivalence(gaps)
    assert verdict.outcome == HOLDS
    assert "4x7" in verdict.notes[0]
