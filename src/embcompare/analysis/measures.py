"""Measures that separate what training did to a word's row from what the row held before.

Seen words
    A word is *seen* when it occurs at least k times (`semantic.min_count_seen`) in the run's
    training sample, counted by exact token. Only seen rows got enough gradient to say
    anything about training; other rows are still (nearly) their initial vectors.
Movement
    For each seen word of a trainable channel: the cosine between its trained and its initial
    row, and the relative change ||trained - init|| / ||init||; means over all seen words and
    over frequency bands (k..19, 20..99, 100+ occurrences with the default edges).
Similarity on seen pairs
    A benchmark pair counts only when both its words are seen, and when every compared space
    (the pretrained source, each channel, each trainable channel's update delta = trained -
    init) has both words, so all spaces are scored on the same pairs. Beside each Spearman rho:
    the pair count and a 95% percentile-bootstrap interval over pairs (the same resamples for
    every space, fixed seed). With fewer than `min_pairs` pairs no rho is given: the status
    is "too few pairs".
Lexicon probe
    The words of a human-rated lexicon (lexicon.py) that are seen, labelled by the sign of
    their rating; the score is the accuracy of a standardised logistic regression under
    cross-validation whose folds are split by word (a word and its case variants fall in one
    fold, never in training and test at once), pooled over the held-out words. Beside it the
    majority rate: the share of the commoner label on the same words.
Transfer probe (Alps/Himalaya, word level)
    The same probe fitted on every seen lexicon word, then scored on the lexicon words that
    training never saw but the source knows and the vocabulary has rows for. rand's unseen
    rows are random; static keeps the source's geometry; nonstatic moved the seen words only.
Perturbed test set (Alps/Himalaya, sentence level)
    Every test token that is a polar lexicon word seen in training (at least once) is replaced
    by its nearest neighbour in the pretrained source (cosine) among the polar lexicon words of
    the same sign that training never saw, that the source knows and that have a row in the
    vocabulary. Words of a sign with no such neighbour are kept.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from embcompare.analysis.similarity import (
    Space,
    pair_cosines,
    pair_rows,
    row_cosines,
    spearman,
    unit_rows,
)
from embcompare.analysis.word_benchmarks import WordPairs

TOO_FEW_PAIRS = "too few pairs"


# --- seen words and movement --------------------------------------------------------------


def training_counts(train_tokens: Sequence[Sequence[str]]) -> Counter:
    return Counter(t for tokens in train_tokens for t in tokens)


def seen_counts(words: Sequence[str], counts: Mapping[str, int]) -> np.ndarray:
    """Training occurrences of each word (exact token), aligned with `words`."""
    return np.array([counts.get(w, 0) for w in words], dtype=np.int64)


def frequency_bands(k: int, edges: Sequence[int]) -> list[tuple[int, int | None]]:
    """(low, high) occurrence bands from k up, cut at `edges`: k=5, (20, 100) gives
    (5, 19), (20, 99), (100, None)."""
    cuts = [k, *sorted(e for e in edges if e > k)]
    return [(low, high - 1) for low, high in zip(cuts, cuts[1:], strict=False)] + [(cuts[-1], None)]


def band_name(low: int, high: int | None) -> str:
    return f"seen{low}plus" if high is None else f"seen{low}to{high}"


def movement(
    before: np.ndarray, after: np.ndarray, counts: np.ndarray, k: int, edges: Sequence[int]
) -> dict[str, float | int | None]:
    """How far the seen rows moved: mean cosine and relative change, overall and by band."""
    cosines = row_cosines(before, after)
    init_norms = np.linalg.norm(np.asarray(before, dtype=np.float64), axis=1)
    change = np.linalg.norm(np.asarray(after, np.float64) - np.asarray(before, np.float64), axis=1)
    relative = np.divide(change, init_norms, out=np.full_like(change, np.nan), where=init_norms > 0)
    report = _movement_of(cosines, relative, counts >= k, "")
    for low, high in frequency_bands(k, edges):
        inside = (counts >= low) & (counts <= (np.inf if high is None else high))
        report.update(_movement_of(cosines, relative, inside, f"_{band_name(low, high)}"))
    return report


def _movement_of(cosines, relative, chosen: np.ndarray, suffix: str) -> dict:
    return {
        f"cosine{suffix}": _mean(cosines[chosen]),
        f"relative_change{suffix}": _mean(relative[chosen]),
        f"words{suffix}": int(chosen.sum()),
    }


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


# --- similarity on seen pairs -------------------------------------------------------------


@dataclass(frozen=True)
class SeenPairScore:
    spearman: float | None
    ci_low: float | None
    ci_high: float | None
    pairs: int
    status: str  # "ok" or TOO_FEW_PAIRS

    def as_dict(self) -> dict:
        return {
            "spearman": self.spearman,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "pairs": self.pairs,
            "status": self.status,
        }


def seen_pair_mask(vocab_space: Space, counts: np.ndarray, pairs: WordPairs, k: int) -> np.ndarray:
    """Pairs whose two words both have a vocabulary row seen at least k times in training.

    `counts` is aligned with the rows of `vocab_space`; a word matches the row the space's
    lookup gives it (the first case variant under the lowercase policy)."""
    first, second, known = pair_rows(vocab_space, pairs)
    count_of = np.append(counts, 0)  # row -1 (not in the vocabulary) reads the 0 at the end
    return known & (count_of[first] >= k) & (count_of[second] >= k)


def seen_pair_scores(
    spaces: Mapping[str, Space],
    pairs: WordPairs,
    seen: np.ndarray,
    min_pairs: int,
    resamples: int,
    seed: int,
) -> dict[str, SeenPairScore]:
    """Each space scored on the same pairs: seen ones that every space has both words of."""
    shared = seen & np.logical_and.reduce([pair_rows(s, pairs)[2] for s in spaces.values()])
    count = int(shared.sum())
    if count < min_pairs:
        return {name: SeenPairScore(None, None, None, count, TOO_FEW_PAIRS) for name in spaces}
    gold = pairs.gold[shared]
    resampled = np.random.default_rng(seed).integers(0, count, size=(resamples, count))
    scores = {}
    for name, space in spaces.items():
        first, second, _ = pair_rows(space, pairs)
        cosines = pair_cosines(space, first[shared], second[shared])
        low, high = bootstrap_spearman_ci(gold, cosines, resampled)
        scores[name] = SeenPairScore(spearman(gold, cosines), low, high, count, "ok")
    return scores


def bootstrap_spearman_ci(
    gold: np.ndarray, predicted: np.ndarray, resampled: np.ndarray, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile interval of Spearman's rho over resamples of the pairs (rows of indices)."""
    rhos = bootstrap_spearmans(gold, predicted, resampled)
    rhos = rhos[np.isfinite(rhos)]
    if not len(rhos):
        return None, None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(rhos, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_spearmans(
    gold: np.ndarray, predicted: np.ndarray, resampled: np.ndarray
) -> np.ndarray:
    """Spearman's rho on each resample of the pairs (one row of indices a resample)."""
    gold_ranks = stats.rankdata(gold[resampled], axis=1)
    predicted_ranks = stats.rankdata(predicted[resampled], axis=1)
    return _row_pearson(gold_ranks, predicted_ranks)


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / denominator


# --- lexicon probes -----------------------------------------------------------------------


def word_folds(
    words: Sequence[str], labels: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) indices of cross-validation folds split by word: all entries of one word
    (case-folded) sit in the same test fold, and each entry is in exactly one test fold.
    Folds are stratified by label; fewer folds when a class has fewer words than `folds`."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.array([w.lower() for w in words])
    group_labels = {g: label for g, label in zip(groups, labels, strict=True)}
    _, sizes = np.unique(list(group_labels.values()), return_counts=True)
    splits = min(folds, int(sizes.min())) if len(sizes) == 2 else 0
    if splits < 2:
        return []
    cv = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(words)), labels, groups))


@dataclass(frozen=True)
class ProbeScore:
    accuracy: float | None
    majority: float | None  # share of the commoner label among the scored words
    words: int

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "majority": self.majority, "words": self.words}


def _probe_model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def majority_rate(labels: np.ndarray) -> float | None:
    if not len(labels):
        return None
    return float(np.bincount(np.asarray(labels, dtype=np.int64)).max() / len(labels))


def lexicon_probe(
    features: np.ndarray, labels: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> ProbeScore:
    """Accuracy over all held-out words, each predicted by the fold model that never saw it."""
    if not folds:
        return ProbeScore(None, majority_rate(labels), len(labels))
    correct = np.zeros(len(labels), dtype=bool)
    for train_rows, test_rows in folds:
        model = _probe_model().fit(features[train_rows], labels[train_rows])
        correct[test_rows] = model.predict(features[test_rows]) == labels[test_rows]
    return ProbeScore(float(correct.mean()), majority_rate(labels), len(labels))


@dataclass(frozen=True)
class TransferScore:
    accuracy: float | None
    majority: float | None  # share of the commoner label among the test words
    train_words: int
    test_words: int

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "majority": self.majority,
            "train_words": self.train_words,
            "test_words": self.test_words,
        }


def transfer_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
) -> TransferScore:
    """Fit on the seen words, score on the unseen ones; None without two classes or test words."""
    sizes = (len(train_labels), len(test_labels))
    if len(np.unique(train_labels)) < 2 or not len(test_labels):
        return TransferScore(None, majority_rate(test_labels), *sizes)
    model = _probe_model().fit(train_features, train_labels)
    accuracy = float(np.mean(model.predict(test_features) == test_labels))
    return TransferScore(accuracy, majority_rate(test_labels), *sizes)


# --- the perturbed test set ---------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    tokens: list[list[str]]
    replaced: np.ndarray  # tokens replaced per sentence
    table: dict[str, str]  # seen word -> its unseen replacement
    swaps: Counter  # seen word -> test tokens of it replaced


def replacement_table(
    words_to_replace: Sequence[str],
    candidates: Sequence[str],
    polar: Mapping[str, int],
    source,
) -> dict[str, str]:
    """Each word -> its nearest candidate of the same lexicon sign, by cosine in the source."""
    table: dict[str, str] = {}
    for sign in (0, 1):
        targets = [w for w in words_to_replace if polar[w.lower()] == sign]
        pool = [w for w in candidates if polar[w.lower()] == sign]
        if not targets or not pool:
            continue
        target_vectors = unit_rows(_source_rows(source, targets))
        pool_vectors = unit_rows(_source_rows(source, pool))
        nearest = (target_vectors @ pool_vectors.T).argmax(axis=1)
        table.update({w: pool[i] for w, i in zip(targets, nearest, strict=True)})
    return table


def _source_rows(source, words: Sequence[str]) -> np.ndarray:
    return np.asarray(source.vectors[[source.row_of(w) for w in words]], dtype=np.float64)


def perturb_test_set(
    test_tokens: Sequence[Sequence[str]],
    counts: Mapping[str, int],
    vocab_words: Sequence[str],
    polar: Mapping[str, int],
    source,
) -> Perturbation:
    """The test set with seen polar words swapped for unseen ones (see the module docstring)."""

    def is_polar_known(word: str) -> bool:
        return word.lower() in polar and source.row_of(word) is not None

    in_test = {t for tokens in test_tokens for t in tokens}
    to_replace = sorted(w for w in in_test if counts.get(w, 0) > 0 and is_polar_known(w))
    candidates = sorted(w for w in vocab_words if counts.get(w, 0) == 0 and is_polar_known(w))
    table = replacement_table(to_replace, candidates, polar, source)
    tokens = [[table.get(t, t) for t in sentence] for sentence in test_tokens]
    replaced = np.array([sum(t in table for t in sentence) for sentence in test_tokens])
    swaps = Counter(t for sentence in test_tokens for t in sentence if t in table)
    return Perturbation(tokens, replaced.astype(np.int64), table, swaps)


def write_replacements(
    path: Path, perturbation: Perturbation, counts: Mapping[str, int], polar: Mapping[str, int]
) -> None:
    """One row per swapped word: the word, its training count, its sign, its replacement and
    how many test tokens were swapped."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["word", "training_count", "polarity", "replacement", "test_tokens"])
        for word, replacement in sorted(perturbation.table.items()):
            writer.writerow(
                [
                    word,
                    counts.get(word, 0),
                    polar[word.lower()],
                    replacement,
                    perturbation.swaps[word],
                ]
            )
