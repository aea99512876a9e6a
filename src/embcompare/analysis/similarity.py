"""Scores of word vectors: word similarity, analogies, nearest neighbours, drift measures
and the polarity probe, over a `Space` of named vectors.

Word lookup
    With `similarity.lowercase` (the default) a word matches the first row, in the vectors'
    own order, whose lowercased word equals its lowercased form: in a frequency-ordered file
    that is the most frequent case variant. This is gensim's `case_insensitive=True`.
Word similarity
    Spearman correlation between the cosine of each benchmark pair (conf/similarity) and its
    human score. A pair with a word the vectors lack is skipped and counted as OOV; coverage
    = pairs scored / all pairs of the file. Every word of the vectors is searched: this equals
    gensim's `evaluate_word_pairs(restrict_vocab=len(vectors))` to 1e-9. gensim's default,
    restrict_vocab=300000, would drop GloVe 6B's last 100k words and lower RW's coverage.
    Fewer than 3 scored pairs, or constant scores, give no correlation (None).
Common subset
    Given several vectors, each is scored on only the pairs that all of them cover, so that
    the correlations compare like with like (coverage is then the shared share).
Analogies
    3CosAdd on questions-words.txt (a : b :: c : d): the answer is the word whose unit vector
    has the highest dot product with b - a + c (unit vectors), a, b and c themselves (and
    their case variants) excluded, searched among the first `semantic.analogy_vocab` words of
    the vectors (the source's file order; a run's vocabulary is ordered by training
    frequency). Questions with a word outside that list are skipped; coverage = answered /
    all questions. This is gensim's `evaluate_word_analogies` with the same restrict_vocab.
Nearest neighbours
    The top-k words by cosine of each probe word (conf/probe), itself excluded.
Neighbourhood overlap
    Jaccard index of a word's top-k neighbour sets in two spaces over the same words.
Training-label probe (polarity)
    Which words does the task label? For every training word, token counts per class give a
    smoothed log-odds ratio of the word in a class against the other classes,
        delta(w, c) = logit p(w | c) - logit p(w | not c),  p(w | c) = (n_wc + a) / (N_c + a V),
    with add-a smoothing (a = `smoothing`) over the V training word types. A word counts when
    it occurs at least `min_count` times and its largest delta reaches `threshold`; its label
    is that class. The score is the stratified k-fold cross-validated accuracy of a
    standardised logistic regression predicting that label from the word's vector.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats

from embcompare.analysis.word_benchmarks import Analogies, WordPairs

MIN_PAIRS = 3  # a rank correlation of one or two pairs says nothing
ANALOGY_BATCH = 512  # questions scored per matrix product: 512 x 30k floats is 60 MB


# --- vectors and word lookup --------------------------------------------------------------


@dataclass
class Space:
    """Named word vectors (one row per word) and the word lookup of one case policy."""

    name: str
    words: Sequence[str]
    vectors: np.ndarray
    lowercase: bool = True

    def key(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    @cached_property
    def lookup(self) -> dict[str, int]:
        """Key -> the first row with that key."""
        table: dict[str, int] = {}
        for row, word in enumerate(self.words):
            table.setdefault(self.key(word), row)
        return table

    def rows_of(self, words: Iterable[str]) -> np.ndarray:
        """The row of each word, -1 where the vectors lack it."""
        find = self.lookup.get
        if self.lowercase:  # spelled out: a run looks up ~80k analogy words per space
            return np.fromiter((find(w.lower(), -1) for w in words), dtype=np.int64)
        return np.fromiter((find(w, -1) for w in words), dtype=np.int64)

    def head(self, size: int | None) -> Space:
        """The first `size` words only, the way gensim's restrict_vocab cuts a vocabulary."""
        if size is None or size >= len(self.words):
            return self
        return Space(self.name, self.words[:size], self.vectors[:size], self.lowercase)

    @cached_property
    def unit(self) -> np.ndarray:
        """Rows scaled to length 1, float32 for fast searches over the whole vocabulary."""
        return unit_rows(self.vectors, np.float32)

    @cached_property
    def first_rows(self) -> np.ndarray:
        """Per row: the first row with its key (itself, unless a variant spelling)."""
        return self.rows_of(self.words)

    @cached_property
    def variants(self) -> dict[int, list[int]]:
        """Rows sharing a key with another row ('Paris', 'paris'), by the key's first row."""
        firsts = self.first_rows
        groups: dict[int, list[int]] = {}
        for row in np.flatnonzero(firsts != np.arange(len(firsts))):  # the later spellings only
            first = int(firsts[row])
            groups.setdefault(first, [first]).append(int(row))
        return groups

    @cached_property
    def has_variants(self) -> np.ndarray:
        """Per row: whether it is the first row of a key that other rows share."""
        mask = np.zeros(len(self.words), dtype=bool)
        mask[list(self.variants)] = True
        return mask


def unit_rows(matrix: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Each row divided by its length; all-zero rows (padding) stay zero, as in gensim."""
    rows = np.asarray(matrix, dtype=dtype)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


# --- word similarity ----------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarityScore:
    spearman: float | None
    scored: int
    total: int

    @property
    def coverage(self) -> float:
        return self.scored / self.total if self.total else 0.0

    def as_dict(self) -> dict:
        return {
            "spearman": self.spearman,
            "scored": self.scored,
            "total": self.total,
            "oov_pairs": self.total - self.scored,
            "coverage": self.coverage,
        }


def pair_rows(space: Space, pairs: WordPairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of both words of every pair, and whether the vectors have both."""
    first, second = space.rows_of(pairs.distinct_words)[pairs.word_positions].T
    return first, second, (first >= 0) & (second >= 0)


def pair_cosines(space: Space, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    # Normalise before the dot product, never after: then cos(a, b) and cos(b, a) are bitwise
    # equal, so a pair listed in both orders ties as in gensim. Dividing afterwards breaks that
    # tie by rounding and moves RW's Spearman by 3e-7.
    return (unit_rows(space.vectors[first]) * unit_rows(space.vectors[second])).sum(axis=1)


def spearman(gold: np.ndarray, predicted: np.ndarray) -> float | None:
    if len(gold) < MIN_PAIRS or np.ptp(gold) == 0 or np.ptp(predicted) == 0:
        return None
    return float(stats.spearmanr(gold, predicted).statistic)


def score_similarity(
    space: Space, pairs: WordPairs, subset: np.ndarray | None = None
) -> SimilarityScore:
    """Spearman of cosine against the human scores, over the covered pairs (within `subset`)."""
    first, second, known = pair_rows(space, pairs)
    if subset is not None:
        known &= subset
    cosines = pair_cosines(space, first[known], second[known])
    return SimilarityScore(spearman(pairs.gold[known], cosines), int(known.sum()), len(pairs))


def common_subset_scores(
    spaces: Mapping[str, Space], pairs: WordPairs
) -> dict[str, SimilarityScore]:
    """Each space scored on only the pairs that every one of them covers."""
    if not spaces:
        return {}
    shared = np.logical_and.reduce([pair_rows(space, pairs)[2] for space in spaces.values()])
    return {name: score_similarity(space, pairs, shared) for name, space in spaces.items()}


# --- analogies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalogyScore:
    by_section: dict[str, tuple[int, int, int]]  # section -> (correct, answered, total)

    def _sum(self, sections: Iterable[str]) -> tuple[int, int, int]:
        counts = [self.by_section[s] for s in sections]
        return tuple(int(sum(column)) for column in zip(*counts, strict=True)) or (0, 0, 0)

    def as_dict(self) -> dict:
        # gensim's file names its syntactic sections gram1-... and its semantic ones otherwise
        syntactic = [s for s in self.by_section if s.startswith("gram")]
        semantic = [s for s in self.by_section if not s.startswith("gram")]
        correct, answered, total = self._sum(self.by_section)
        return {
            "accuracy": _ratio(correct, answered),
            "coverage": _ratio(answered, total),
            "correct": correct,
            "answered": answered,
            "total": total,
            "semantic_accuracy": _ratio(*self._sum(semantic)[:2]),
            "syntactic_accuracy": _ratio(*self._sum(syntactic)[:2]),
            "sections": {
                name: {"correct": c, "answered": a, "total": t}
                for name, (c, a, t) in self.by_section.items()
            },
        }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def score_analogies(space: Space, analogies: Analogies, vocab_size: int | None) -> AnalogyScore:
    """3CosAdd accuracy over the first `vocab_size` words; other questions are skipped."""
    searched = space.head(vocab_size)
    rows = searched.rows_of(analogies.distinct_words)[analogies.word_positions]
    answerable = np.flatnonzero((rows >= 0).all(axis=1))
    correct = np.zeros(len(rows), dtype=bool)
    answers = _analogy_answers(searched, rows[answerable, :3])
    correct[answerable] = searched.first_rows[answers] == rows[answerable, 3]
    asked = np.zeros(len(rows), dtype=bool)
    asked[answerable] = True
    by_section: dict[str, list[int]] = {}
    for section, right, answered in zip(analogies.sections, correct, asked, strict=True):
        counts = by_section.setdefault(section, [0, 0, 0])
        counts[0] += int(right)
        counts[1] += int(answered)
        counts[2] += 1
    return AnalogyScore({name: tuple(counts) for name, counts in by_section.items()})


def _analogy_answers(space: Space, inputs: np.ndarray) -> np.ndarray:
    """For rows (a, b, c), the row of highest cosine with b - a + c, inputs excluded."""
    unit = space.unit
    answers = np.empty(len(inputs), dtype=np.int64)
    for start in range(0, len(inputs), ANALOGY_BATCH):
        a, b, c = inputs[start : start + ANALOGY_BATCH].T
        scores = (unit[b] - unit[a] + unit[c]) @ unit.T
        _exclude(scores, space, (a, b, c))
        answers[start : start + ANALOGY_BATCH] = scores.argmax(axis=1)
    return answers


def _exclude(scores: np.ndarray, space: Space, columns: Iterable[np.ndarray]) -> None:
    """Rule out, line by line, the given rows and their case variants as answers."""
    lines = np.arange(len(scores))
    for rows in columns:
        scores[lines, rows] = -np.inf
        for line in np.flatnonzero(space.has_variants[rows]):  # few lines: most words have none
            scores[line, space.variants[int(rows[line])]] = -np.inf


# --- nearest neighbours and drift ---------------------------------------------------------


def top_neighbours(space: Space, rows: Sequence[int], k: int) -> np.ndarray:
    """The k rows of highest cosine with each given row (itself excluded), best first."""
    k = min(k, len(space.words) - 1)
    if k <= 0 or len(rows) == 0:
        return np.zeros((len(rows), 0), dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    scores = space.unit[rows] @ space.unit.T
    _exclude(scores, space, (rows,))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def nearest_neighbours(space: Space, words: Sequence[str], k: int) -> dict[str, list]:
    """Probe word -> [(neighbour, cosine), ...] best first; words the vectors lack are left out."""
    found = [(w, r) for w, r in zip(words, space.rows_of(words), strict=True) if r >= 0]
    top = top_neighbours(space, [r for _, r in found], k)
    unit = space.unit
    return {
        word: [(space.words[n], float(unit[row] @ unit[n])) for n in neighbours]
        for (word, row), neighbours in zip(found, top, strict=True)
    }


def row_cosines(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Cosine between each row of `before` and the same row of `after`."""
    return (unit_rows(before) * unit_rows(after)).sum(axis=1)


def neighbourhood_overlap(before: Space, after: Space, rows: Sequence[int], k: int) -> np.ndarray:
    """Jaccard index of each row's top-k neighbour sets in two spaces over the same words."""
    old, new = top_neighbours(before, rows, k), top_neighbours(after, rows, k)
    return np.array(
        [len(set(o) & set(n)) / len(set(o) | set(n)) for o, n in zip(old, new, strict=True)]
    )


# --- polarity probe -----------------------------------------------------------------------


def class_log_odds(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Smoothed log-odds ratio of each word (row) in each class (column) against the rest."""
    types = counts.shape[0]
    in_class = (counts + smoothing) / (counts.sum(axis=0) + smoothing * types)
    rest = counts.sum(axis=1, keepdims=True) - counts
    elsewhere = (rest + smoothing) / (rest.sum(axis=0) + smoothing * types)
    return _logit(in_class) - _logit(elsewhere)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def polar_words(
    train_tokens: Sequence[Sequence[str]],
    labels: Sequence[int],
    min_count: int,
    threshold: float,
    smoothing: float,
) -> tuple[list[str], np.ndarray]:
    """Training words clearly tied to one class, and that class (see the module docstring)."""
    classes = np.unique(np.asarray(labels))
    position = {int(c): i for i, c in enumerate(classes)}
    per_word: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(classes)))
    for tokens, label in zip(train_tokens, labels, strict=True):
        for word, count in Counter(tokens).items():
            per_word[word][position[int(label)]] += count
    words = sorted(per_word)
    counts = np.array([per_word[w] for w in words]).reshape(len(words), len(classes))
    odds = class_log_odds(counts, smoothing)
    keep = (counts.sum(axis=1) >= min_count) & (odds.max(axis=1) >= threshold)
    chosen = [w for w, kept in zip(words, keep, strict=True) if kept]
    return chosen, classes[odds.argmax(axis=1)[keep]]


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int, seed: int):
    """Cross-validated accuracy of a logistic regression; None with too few words per class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, sizes = np.unique(labels, return_counts=True)
    splits = min(folds, int(sizes.min())) if len(sizes) else 0
    if len(sizes) < 2 or splits < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=cv).mean())
