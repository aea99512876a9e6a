"""Semantic evaluation of word vectors, before training (the pretrained source) and after it
(each channel of a run's learned embedding matrix); also the `embcompare evaluate` command.

    embcompare evaluate vectors=glove-6b-50d
    embcompare evaluate vectors=/path/to/vectors.txt

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
Drift (trainable channels of a run)
    Mean cosine between each word's vector before and after training, for words seen in the
    training subset (they received gradient) and words not seen (dev/test or benchmark words;
    they should not move). Neighbourhood overlap: Jaccard index of the top-k neighbour sets
    before and after, for the probe words and for the most frequent training words.
Polarity probe
    Which words does the task label? For every training word, token counts per class give a
    smoothed log-odds ratio of the word in a class against the other classes,
        delta(w, c) = logit p(w | c) - logit p(w | not c),  p(w | c) = (n_wc + a) / (N_c + a V),
    with add-a smoothing (a = `smoothing`) over the V training word types. A word counts when
    it occurs at least `min_count` times and its largest delta reaches `threshold`; its label
    is that class. The score is the stratified k-fold cross-validated accuracy of a
    standardised logistic regression predicting that label from the word's vector. The same
    words are probed before and after training, so the two accuracies compare.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from embcompare.data import numbered_lines
from embcompare.errors import EmbcompareError
from embcompare.text import UNK_ID

log = logging.getLogger("embcompare")

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
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
        lookup, key = self.lookup, self.key
        return np.array([lookup.get(key(w), -1) for w in words], dtype=np.int64)

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
    def variants(self) -> dict[int, list[int]]:
        """Rows sharing a key with another row ('Paris', 'paris'), by the key's first row."""
        groups: dict[int, list[int]] = defaultdict(list)
        for row, word in enumerate(self.words):
            groups[self.lookup[self.key(word)]].append(row)
        return {first: rows for first, rows in groups.items() if len(rows) > 1}


def unit_rows(matrix: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Each row divided by its length; all-zero rows (padding) stay zero, as in gensim."""
    rows = np.asarray(matrix, dtype=dtype)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


# --- benchmark files ----------------------------------------------------------------------


@dataclass(frozen=True)
class WordPairs:
    name: str
    path: Path
    first: tuple[str, ...]
    second: tuple[str, ...]
    gold: np.ndarray

    def __len__(self) -> int:
        return len(self.gold)


@dataclass(frozen=True)
class Analogies:
    path: Path
    sections: tuple[str, ...]  # the section of each question
    questions: tuple[tuple[str, str, str, str], ...]  # a : b :: c : d


def read_word_pairs(path: Path, name: str) -> WordPairs:
    """word1<TAB>word2<TAB>score per line; blank lines and '#' comments are skipped."""
    first, second, gold = [], [], []
    for number, line in numbered_lines(path, "utf-8", encoding_key=None):
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = _pair_fields(line, path, number)
        first.append(a)
        second.append(b)
        gold.append(score)
    if not gold:
        raise EmbcompareError(f"{path}: no word pairs in the file")
    return WordPairs(name, path, tuple(first), tuple(second), np.array(gold))


def _pair_fields(line: str, path: Path, number: int) -> tuple[str, str, float]:
    fields = [field.strip() for field in line.split("\t")]
    if len(fields) != 3 or not fields[0] or not fields[1]:
        raise EmbcompareError(
            f"{path}: line {number}: expected word1<TAB>word2<TAB>score, found {line!r}"
        )
    try:
        score = float(fields[2])
    except ValueError:
        raise EmbcompareError(
            f"{path}: line {number}: score {fields[2]!r} is not a number"
        ) from None
    if not math.isfinite(score):
        raise EmbcompareError(f"{path}: line {number}: score {fields[2]!r} is not finite")
    return fields[0], fields[1], score


def read_analogies(path: Path) -> Analogies:
    """': section' header lines, then 'a b c d' questions separated by spaces."""
    sections, questions, section = [], [], None
    for number, line in numbered_lines(path, "utf-8", encoding_key=None):
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        words = line.split()
        if not words:
            continue
        if section is None:
            raise EmbcompareError(f"{path}: line {number}: question before any ': section' line")
        if len(words) != 4:
            raise EmbcompareError(
                f"{path}: line {number}: expected 4 words 'a b c d', found {len(words)}"
            )
        sections.append(section)
        questions.append(tuple(words))
    return Analogies(path, tuple(sections), tuple(questions))


def benchmark_files(cfg: DictConfig) -> tuple[dict[str, Path], Path]:
    """The similarity files and the analogy file of cfg.similarity, fetched when missing."""
    from embcompare.fetch import data_dir_from, ensure_file

    data_dir, mirror = data_dir_from(cfg.paths.data_dir), cfg.paths.mirror
    pairs = {
        name: ensure_file(entry, data_dir, mirror)
        for name, entry in cfg.similarity.benchmarks.items()
    }
    return pairs, ensure_file(cfg.similarity.analogies, data_dir, mirror)


def load_benchmarks(cfg: DictConfig) -> tuple[dict[str, WordPairs], Analogies]:
    pair_files, analogy_file = benchmark_files(cfg)
    pairs = {name: read_word_pairs(path, name) for name, path in pair_files.items()}
    return pairs, read_analogies(analogy_file)


def benchmark_words(cfg: DictConfig) -> set[str]:
    """Every word of the similarity and analogy benchmarks (lowercased under that policy)."""
    benchmarks, analogies = load_benchmarks(cfg)
    words = {w for question in analogies.questions for w in question}
    for pairs in benchmarks.values():
        words.update(pairs.first, pairs.second)
    return {w.lower() for w in words} if cfg.similarity.lowercase else words


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
    first, second = space.rows_of(pairs.first), space.rows_of(pairs.second)
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
    rows = searched.rows_of(w for q in analogies.questions for w in q).reshape(-1, 4)
    answerable = np.flatnonzero((rows >= 0).all(axis=1))
    correct = np.zeros(len(rows), dtype=bool)
    answers = _analogy_answers(searched, rows[answerable, :3])
    correct[answerable] = (
        searched.rows_of(searched.words[a] for a in answers) == rows[answerable, 3]
    )
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
        if space.variants:
            for line, row in enumerate(rows):
                scores[line, space.variants.get(int(row), [])] = -np.inf


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


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


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


# --- inside a run -------------------------------------------------------------------------


def evaluate_run(
    cfg: DictConfig,
    vocab,
    source,
    matrices_before: list[np.ndarray],
    matrices_after: list[np.ndarray],
    train_tokens: Sequence[Sequence[str]],
    train_labels: Sequence[int],
    output_dir: Path,
) -> dict:
    """Measure the source and every channel; write semantic.json and neighbours.csv beside
    metrics.json and return the headline numbers that go into metrics.json."""
    from embcompare.run import write_json_atomic

    _check_headline(cfg)
    lowercase = bool(cfg.similarity.lowercase)
    words = vocab.words[UNK_ID + 1 :]  # padding and unknown rows are zeros: nothing to measure
    before = channel_spaces(words, matrices_before, lowercase)
    after = channel_spaces(words, matrices_after, lowercase)
    scored = {"source": source_space(source, words, lowercase), **after}
    trained = {t for tokens in train_tokens for t in tokens}
    seen = np.array([w in trained for w in words], dtype=bool)
    trainable = [name for name, ch in zip(after, cfg.setup.channels, strict=True) if ch.trainable]
    report = {
        "policy": _policy(cfg, lowercase),
        "words": {name: len(space.words) for name, space in scored.items()},
        **_benchmark_reports(cfg, scored),
        "drift": {name: drift_report(before[name], after[name], seen, cfg) for name in trainable},
        "probe": probe_report(cfg, words, before, after, train_tokens, train_labels),
    }
    write_json_atomic(output_dir / "semantic.json", report)
    write_neighbours_csv(output_dir / "neighbours.csv", before, after, cfg.probe)
    return headline(report, cfg, last=f"channel_{len(matrices_after) - 1}")


def _check_headline(cfg: DictConfig) -> None:
    """A misspelt headline benchmark would only show as missing numbers: stop before training
    results are written instead."""
    known = list(cfg.similarity.benchmarks)
    for name in cfg.semantic.headline:
        if name not in known:
            raise EmbcompareError(
                f"semantic.headline: {name!r} is not a benchmark of similarity.benchmarks {known}"
            )


def channel_spaces(
    words: Sequence[str], matrices: Sequence[np.ndarray], lowercase: bool
) -> dict[str, Space]:
    """One space per channel over the run's words (the matrices without their first two rows)."""
    return {
        f"channel_{i}": Space(f"channel_{i}", words, matrix[UNK_ID + 1 :], lowercase)
        for i, matrix in enumerate(matrices)
    }


def source_space(source, words: Sequence[str], lowercase: bool) -> Space:
    """The pretrained vectors of the run's words that the source knows, in vocabulary order."""
    found = [(w, r) for w in words if (r := source.row_of(w)) is not None]
    rows = np.array([r for _, r in found], dtype=np.int64)
    return Space("source", [w for w, _ in found], np.asarray(source.vectors[rows]), lowercase)


def _policy(cfg: DictConfig, lowercase: bool) -> dict:
    return {
        "lowercase": lowercase,
        "oov": "pairs and questions with an unknown word are skipped",
        "analogy_method": "3CosAdd",
        "analogy_vocab": cfg.semantic.analogy_vocab,
    }


def _benchmark_reports(cfg: DictConfig, spaces: Mapping[str, Space]) -> dict:
    """Similarity and analogies. A run goes on without them when the files can't be fetched
    (no mirror, no network); a malformed file is still an error."""
    try:
        pair_files, analogy_file = benchmark_files(cfg)
    except EmbcompareError as error:
        log.warning("semantic: no similarity or analogy scores: %s", error)
        return {"similarity": None, "analogies": None, "unavailable": str(error)}
    benchmarks = {name: read_word_pairs(path, name) for name, path in pair_files.items()}
    analogies = read_analogies(analogy_file)
    return {
        "similarity": {
            "spaces": {
                name: {
                    b: score_similarity(space, pairs).as_dict() for b, pairs in benchmarks.items()
                }
                for name, space in spaces.items()
            },
            "common_subset": {
                b: {name: s.as_dict() for name, s in common_subset_scores(spaces, pairs).items()}
                for b, pairs in benchmarks.items()
            },
        },
        "analogies": {
            name: score_analogies(space, analogies, cfg.semantic.analogy_vocab).as_dict()
            for name, space in spaces.items()
        },
    }


def drift_report(before: Space, after: Space, seen: np.ndarray, cfg: DictConfig) -> dict:
    """How far a trainable channel moved: row cosines and neighbourhood overlap."""
    cosines = row_cosines(before.vectors, after.vectors)
    probes = [w for w in cfg.probe.words if before.key(w) in before.lookup]
    frequent = np.flatnonzero(seen)[: int(cfg.semantic.overlap_words)]  # vocabulary order
    k = int(cfg.probe.k)
    probe_overlap = neighbourhood_overlap(before, after, before.rows_of(probes), k)
    return {
        "seen_cosine": _mean(cosines[seen]),
        "unseen_cosine": _mean(cosines[~seen]),
        "seen_words": int(seen.sum()),
        "unseen_words": int((~seen).sum()),
        "probe_jaccard": _mean(probe_overlap),
        "probe_jaccard_by_word": dict(zip(probes, probe_overlap.tolist(), strict=True)),
        "frequent_jaccard": _mean(neighbourhood_overlap(before, after, frequent, k)),
        "frequent_words": len(frequent),
    }


def probe_report(cfg, words, before, after, train_tokens, train_labels) -> dict:
    """Polarity-probe accuracy of every channel before and after, on one set of words."""
    settings = cfg.semantic.polarity
    chosen, labels = polar_words(
        train_tokens,
        train_labels,
        int(settings.min_count),
        float(settings.threshold),
        float(settings.smoothing),
    )
    index = {w: i for i, w in enumerate(words)}
    in_vocab = np.array([w in index for w in chosen], dtype=bool)  # vocab.min_count may drop some
    chosen, labels = [w for w in chosen if w in index], labels[in_vocab]
    rows = np.array([index[w] for w in chosen], dtype=np.int64)

    def accuracy(space: Space) -> float | None:
        return probe_accuracy(space.vectors[rows], labels, int(settings.folds), int(cfg.seed))

    classes, sizes = np.unique(labels, return_counts=True)
    return {
        "words": len(chosen),
        "class_sizes": {str(c): int(n) for c, n in zip(classes, sizes, strict=True)},
        "majority_share": float(sizes.max() / sizes.sum()) if len(sizes) else None,
        "channels": {
            name: {"before": accuracy(before[name]), "after": accuracy(after[name])}
            for name in after
        },
        "sample_words": chosen[:50],
    }


def write_neighbours_csv(path: Path, before: Mapping, after: Mapping, cfg_probe) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["channel", "stage", "word", "rank", "neighbour", "cosine"])
        for stage, spaces in (("before", before), ("after", after)):
            for name, space in spaces.items():
                found = nearest_neighbours(space, list(cfg_probe.words), int(cfg_probe.k))
                for word, neighbours in found.items():
                    for rank, (neighbour, cosine) in enumerate(neighbours, start=1):
                        writer.writerow([name, stage, word, rank, neighbour, f"{cosine:.6f}"])


def headline(report: dict, cfg: DictConfig, last: str) -> dict:
    """Flat numbers of the last channel (the `vectors` of embedding.npz) for metrics.json."""
    flat: dict[str, float | int | None] = {}
    similarity = report["similarity"] or {"spaces": {}}
    for bench in cfg.semantic.headline:
        learned = similarity["spaces"].get(last, {}).get(bench, {})
        reference = similarity["spaces"].get("source", {}).get(bench, {})
        flat[f"{bench}_spearman"] = learned.get("spearman")
        flat[f"{bench}_coverage"] = learned.get("coverage")
        flat[f"{bench}_spearman_source"] = reference.get("spearman")
    analogies = (report["analogies"] or {}).get(last, {})
    flat["analogy_accuracy"] = analogies.get("accuracy")
    flat["analogy_coverage"] = analogies.get("coverage")
    drift = report["drift"].get(last, {})
    flat["drift_seen_cosine"] = drift.get("seen_cosine")
    flat["drift_unseen_cosine"] = drift.get("unseen_cosine")
    flat["neighbour_jaccard"] = drift.get("probe_jaccard")
    probe = report["probe"]
    flat["probe_accuracy"] = probe["channels"][last]["after"]
    flat["probe_accuracy_before"] = probe["channels"][last]["before"]
    flat["probe_words"] = probe["words"]
    return flat


# --- `embcompare evaluate` ----------------------------------------------------------------


def evaluate_name(vectors) -> str:
    """Output-directory name for `vectors=`: the config name, or the file name less extension."""
    if vectors is None:
        return "unnamed"
    name = Path(str(vectors).rstrip("/")).name
    name = name if (CONF_DIR / "embedding" / f"{name}.yaml").is_file() else Path(name).stem
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "unnamed"


if not OmegaConf.has_resolver("evaluate_name"):
    OmegaConf.register_new_resolver("evaluate_name", evaluate_name)


def resolve_vectors(value: str, conf_dir: Path = CONF_DIR) -> dict:
    """The embedding config `vectors=` stands for: a conf/embedding name, else a path."""
    config = conf_dir / "embedding" / f"{value}.yaml"
    if "/" not in value and config.is_file():
        cfg = OmegaConf.load(config)
        if OmegaConf.is_missing(cfg, "path"):
            raise EmbcompareError(
                f"vectors={value}: {config} needs a file; give it directly: vectors=/path/to/file"
            )
        return OmegaConf.to_container(cfg, resolve=True)
    path = Path(value).expanduser()
    if not path.exists():
        known = sorted(p.stem for p in (conf_dir / "embedding").glob("*.yaml"))
        raise EmbcompareError(
            f"vectors={value!r} is neither a config in {conf_dir / 'embedding'} {known} "
            "nor an existing file or directory"
        )
    return {"name": evaluate_name(value), "format": vectors_format(path), "path": str(path)}


def vectors_format(path: Path) -> str:
    """The loader for a vectors file, told by its extension (and a .txt file's first line)."""
    if path.is_dir():
        if (path / "vectors.npy").is_file():
            return "npy_words"
        raise EmbcompareError(f"{path}: a directory, but without vectors.npy and words.txt")
    by_suffix = {".bin": "word2vec_binary", ".vec": "fasttext_vec"}
    suffix = path.suffix.lower()
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix == ".txt":
        return "word2vec_text" if _has_count_header(path) else "glove_text"
    raise EmbcompareError(
        f"{path}: cannot tell the format from {suffix!r}; use .bin (word2vec binary), .vec "
        "(fastText), .txt (GloVe, or word2vec text with a 'count dim' line) or an npy_words dir"
    )


def _has_count_header(path: Path) -> bool:
    with open(path, "rb") as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def evaluate_vectors(cfg: DictConfig) -> dict:
    """Similarity on every benchmark, analogies and probe-word neighbours of one vectors set."""
    from embcompare.embeddings import load_pretrained

    if cfg.vectors is None:
        raise EmbcompareError("vectors=... is required: an embedding config name or a path")
    embedding = resolve_vectors(str(cfg.vectors))
    source = load_pretrained(embedding, Path(cfg.paths.cache_dir).expanduser().absolute())
    space = Space(source.name, source.words, source.vectors, bool(cfg.similarity.lowercase))
    benchmarks, analogies = load_benchmarks(cfg)
    vocab_size = cfg.semantic.analogy_vocab
    return {
        "vectors": {**embedding, "words": len(source.words), "dim": source.dim},
        "policy": _policy(cfg, space.lowercase),
        "similarity": {
            name: score_similarity(space, pairs).as_dict() for name, pairs in benchmarks.items()
        },
        "analogies": score_analogies(space, analogies, vocab_size).as_dict(),
        "neighbours": nearest_neighbours(
            space.head(vocab_size), list(cfg.probe.words), int(cfg.probe.k)
        ),
    }


def similarity_table(scores: Mapping[str, dict]) -> list[str]:
    """Lines of a table: benchmark, Spearman, pairs scored of all, OOV share."""
    lines = [f"{'benchmark':<12} {'spearman':>9} {'pairs scored/total':>19} {'OOV%':>6}"]
    for name, score in scores.items():
        rho = "n/a" if score["spearman"] is None else f"{score['spearman']:.4f}"
        pairs = f"{score['scored']}/{score['total']}"
        lines.append(f"{name:<12} {rho:>9} {pairs:>19} {100 * (1 - score['coverage']):>6.1f}")
    return lines


def format_report(report: dict) -> str:
    vectors, analogies = report["vectors"], report["analogies"]
    lines = [
        f"vectors: {vectors['name']} ({vectors['words']} words x {vectors['dim']})",
        *similarity_table(report["similarity"]),
    ]
    accuracy = "n/a" if analogies["accuracy"] is None else f"{analogies['accuracy']:.4f}"
    lines.append(
        f"analogies (3CosAdd, first {report['policy']['analogy_vocab']} words): accuracy "
        f"{accuracy}, {analogies['answered']}/{analogies['total']} questions answered "
        f"({100 * (analogies['coverage'] or 0):.1f}%)"
    )
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from embcompare.run import write_json_atomic

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        report = evaluate_vectors(cfg)
    except EmbcompareError as error:
        print(f"embcompare: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(format_report(report))
    path = output_dir / "semantic.json"
    write_json_atomic(path, report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
