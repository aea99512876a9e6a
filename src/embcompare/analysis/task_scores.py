"""Task scores of a trained classifier, and the per-epoch history file."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from embcompare.training.loop import Encoded, predict


def task_scores(
    model: keras.Model,
    test: Encoded,
    min_length: int,
    unseen: np.ndarray | None = None,
    oov: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy and macro-F1 on the test set; with `unseen` or `oov`, accuracy on each part of
    that split of the test examples.

    `unseen` marks test examples holding a word that training never showed but the pretrained
    source knows: there, pretrained setups can still use what they know of the word
    ("Alps" vs "Himalaya"), while rand has only a random vector for it. `oov` marks those
    holding a word the source's word list lacks (`has_oov_word`): there only a source with
    character n-grams (embedding.unseen=subwords) has more than a random row to offer.
    """
    predicted = predict(model, test, 500, min_length)
    correct = predicted == test.labels
    scores = {
        "test_accuracy": float(accuracy_score(test.labels, predicted)),
        "test_macro_f1": float(f1_score(test.labels, predicted, average="macro")),
        "test_majority_rate": majority_rate(test.labels),
    }
    if unseen is not None:
        scores["test_share_unseen_words"] = float(unseen.mean())
        scores["test_accuracy_unseen_words"] = _mean_or_none(correct[unseen])
        scores["test_accuracy_seen_words_only"] = _mean_or_none(correct[~unseen])
    if oov is not None:
        scores.update(oov_scores(correct, oov))
    return scores


def oov_scores(correct: np.ndarray, oov: np.ndarray) -> dict[str, int | float | None]:
    """How many test sentences hold a word the source's word list lacks, and the accuracy on
    them and on the rest (None for an empty part)."""
    return {
        "test_sentences_oov_words": int(oov.sum()),
        "test_accuracy_oov_words": _mean_or_none(correct[oov]),
        "test_accuracy_no_oov_words": _mean_or_none(correct[~oov]),
    }


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always predicting the commonest class: the floor an accuracy is read against."""
    return float(np.bincount(np.asarray(labels)).max() / len(labels))


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random sample of about `size` examples with every class in
    its share (at least one of each): the test sentences whose representations are saved."""
    labels = np.asarray(labels)
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(1, round(size * len(members) / len(labels)))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def perturbed_scores(
    model: keras.Model, test: Encoded, perturbed: Encoded, replaced: np.ndarray, min_length: int
) -> dict[str, float | int | None]:
    """The classifier on the perturbed copy of the test set (measures.perturb_test_set): its
    accuracy, and agreement with its predictions on the original, over all sentences and over
    the sentences that had a word replaced."""
    original = predict(model, test, 500, min_length)
    copy = predict(model, perturbed, 500, min_length)
    changed = replaced > 0
    return {
        "perturbed_test_accuracy": float(np.mean(copy == perturbed.labels)),
        "perturbed_agreement": float(np.mean(copy == original)),
        "perturbed_tokens_replaced": int(replaced.sum()),
        "perturbed_sentences_changed": int(changed.sum()),
        "perturbed_changed_accuracy": _mean_or_none((copy == perturbed.labels)[changed]),
        "perturbed_changed_original_accuracy": _mean_or_none((original == test.labels)[changed]),
        "perturbed_changed_agreement": _mean_or_none((copy == original)[changed]),
    }


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def has_unseen_known_word(test_tokens, train_tokens, source) -> np.ndarray:
    """Per test example: does it hold a word absent from training but present in the source?"""
    seen = {t for tokens in train_tokens for t in tokens}
    known_unseen = {
        t
        for tokens in test_tokens
        for t in tokens
        if t not in seen and source.row_of(t) is not None
    }
    return np.array([any(t in known_unseen for t in tokens) for tokens in test_tokens], dtype=bool)


def has_oov_word(test_tokens, source) -> np.ndarray:
    """Per test example: does it hold a word that the source's word list lacks (looked up as
    the embedding matrix looks words up)? n-grams do not count: these are the words a
    word-level source has no vector for."""
    words = {t for tokens in test_tokens for t in tokens}
    unlisted = {w for w in words if source.row_of(w) is None}
    return np.array([any(t in unlisted for t in tokens) for tokens in test_tokens], dtype=bool)


def write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
