"""Semantic evaluation of word vectors, before training (the pretrained source) and after it
(each channel of a run's learned embedding matrix); also the `embcompare evaluate` command.
The benchmark files are read in benchmarks.py and the scores computed in similarity.py, whose
docstring describes word lookup, similarity, analogies and neighbours.

    embcompare evaluate vectors=glove-6b-50d
    embcompare evaluate vectors=/path/to/vectors.txt

Drift (trainable channels of a run)
    Mean cosine between each word's vector before and after training, for words seen in the
    training subset (they received gradient) and words not seen (dev/test or benchmark words;
    they should not move). Neighbourhood overlap: Jaccard index of the top-k neighbour sets
    before and after, for the probe words and for the most frequent training words.
Training-label probe
    The training words tied to one class by their smoothed log-odds ratio (similarity.py's
    docstring gives the formula), labelled with that class, and the cross-validated accuracy
    of a logistic regression predicting the label from the word's vector. The same words are
    probed before and after training, so the two accuracies compare. Circular: the labels come
    from the very training labels the rows were trained on; the lexicon probe is not.
Seen words, movement, similarity on seen pairs, lexicon and transfer probes
    See measures.py: only rows of words seen at least `semantic.min_count_seen` times in the
    training sample are measured, on the same pairs or words for every space.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from embcompare.analysis import measures
from embcompare.analysis.lexicon import load_lexicon
from embcompare.analysis.similarity import (
    Space,
    common_subset_scores,
    nearest_neighbours,
    neighbourhood_overlap,
    polar_words,
    probe_accuracy,
    row_cosines,
    score_analogies,
    score_similarity,
)
from embcompare.analysis.word_benchmarks import (
    benchmark_files,
    extra_benchmark_files,
    headline_benchmarks,
    load_benchmarks,
    read_analogies,
    read_word_pairs,
)
from embcompare.config import CONF_DIR, evaluate_name, register_resolvers
from embcompare.data.text import UNK_ID
from embcompare.errors import EmbcompareError
from embcompare.io import write_json_atomic

log = logging.getLogger("embcompare")

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
    _check_headline(cfg)
    lowercase = bool(cfg.similarity.lowercase)
    words = vocab.words[UNK_ID + 1 :]  # padding and unknown rows are zeros: nothing to measure
    before = channel_spaces(words, matrices_before, lowercase)
    after = channel_spaces(words, matrices_after, lowercase)
    scored = {"source": source_space(source, words, lowercase), **after}
    counts = measures.seen_counts(words, measures.training_counts(train_tokens))
    seen = counts > 0
    trainable = [name for name, ch in zip(after, cfg.setup.channels, strict=True) if ch.trainable]
    k = int(cfg.semantic.min_count_seen)
    deltas = {
        f"{name}_delta": Space(
            f"{name}_delta", words, after[name].vectors - before[name].vectors, lowercase
        )
        for name in trainable
    }
    report = {
        "policy": _policy(cfg, lowercase),
        "words": {name: len(space.words) for name, space in scored.items()},
        **_benchmark_reports(cfg, scored),
        "seen_pairs": seen_pairs_report(cfg, after, {**scored, **deltas}, counts),
        "drift": {name: drift_report(before[name], after[name], seen, cfg) for name in trainable},
        "movement": {
            name: measures.movement(
                before[name].vectors, after[name].vectors, counts, k, cfg.semantic.movement_bands
            )
            for name in trainable
        },
        **lexicon_reports(cfg, words, counts, source, before, after),
        "trainlabel_probe": probe_report(cfg, words, before, after, train_tokens, train_labels),
    }
    write_json_atomic(output_dir / "semantic.json", report)
    write_neighbours_csv(output_dir / "neighbours.csv", before, after, cfg.probe)
    last = f"channel_{len(matrices_after) - 1}"
    return headline(report, cfg, last=last, last_trainable=trainable[-1] if trainable else None)


def seen_pairs_report(cfg: DictConfig, vocab_spaces, spaces, counts: np.ndarray) -> dict:
    """Headline benchmarks scored on pairs of seen words, the same pairs in every space."""
    settings = cfg.semantic.seen_pairs
    try:
        pair_files, _ = benchmark_files(cfg)
    except EmbcompareError as error:
        return {"unavailable": str(error)}
    vocab_space = next(iter(vocab_spaces.values()))  # every channel has the vocabulary's words
    report = {}
    for bench in headline_benchmarks(cfg):
        pairs = read_word_pairs(pair_files[bench], bench)
        seen = measures.seen_pair_mask(vocab_space, counts, pairs, int(cfg.semantic.min_count_seen))
        scores = measures.seen_pair_scores(
            spaces,
            pairs,
            seen,
            int(settings.min_pairs),
            int(settings.resamples),
            int(settings.seed),
        )
        report[bench] = {name: score.as_dict() for name, score in scores.items()}
    return report


def lexicon_reports(cfg: DictConfig, words, counts, source, before, after) -> dict:
    """The lexicon probe on seen words, before and after training, and its transfer to unseen
    words (measures.py), on the same words for the source and every channel."""
    settings = cfg.semantic.lexicon
    polar = load_lexicon(settings.get("path")).polar(float(settings.min_abs_rating))
    source_rows = np.array([source.row_of(w) if w.lower() in polar else None for w in words])
    known = np.array([row is not None for row in source_rows], dtype=bool)
    seen = np.flatnonzero(known & (counts >= int(cfg.semantic.min_count_seen)))
    unseen = np.flatnonzero(known & (counts == 0))
    labels = np.array([polar.get(w.lower(), -1) for w in words], dtype=np.int64)
    folds = measures.word_folds(
        [words[i] for i in seen], labels[seen], int(settings.folds), int(cfg.seed)
    )
    # the source's vectors of the lexicon words, in the rows of the run's words
    source_matrix = np.zeros((len(words), source.dim))
    source_matrix[known] = source.vectors[source_rows[known].astype(np.int64)]

    def probe(matrix: np.ndarray) -> dict:
        return measures.lexicon_probe(matrix[seen], labels[seen], folds).as_dict()

    def transfer(matrix: np.ndarray) -> dict:
        return measures.transfer_probe(
            matrix[seen], labels[seen], matrix[unseen], labels[unseen]
        ).as_dict()

    return {
        "lexicon_probe": {
            "source": probe(source_matrix),
            **{
                name: {"before": probe(before[name].vectors), "after": probe(space.vectors)}
                for name, space in after.items()
            },
        },
        "transfer_probe": {
            "source": transfer(source_matrix),
            **{name: transfer(space.vectors) for name, space in after.items()},
        },
    }


def _check_headline(cfg: DictConfig) -> None:
    """A misspelt headline benchmark would only show as missing numbers: stop before training
    results are written instead."""
    known = list(cfg.similarity.benchmarks)
    extra_benchmark_files(cfg)  # a missing or mistyped extra file stops the run here too
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


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


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


def headline(report: dict, cfg: DictConfig, last: str, last_trainable: str | None) -> dict:
    """Flat numbers for metrics.json: of the last channel (the `vectors` of embedding.npz), and
    for movement and updates of the last trainable channel (None where there is none)."""
    flat: dict[str, float | int | str | None] = {}
    similarity = report["similarity"] or {"spaces": {}}
    for bench in headline_benchmarks(cfg):
        learned = similarity["spaces"].get(last, {}).get(bench, {})
        reference = similarity["spaces"].get("source", {}).get(bench, {})
        flat[f"{bench}_spearman"] = learned.get("spearman")
        flat[f"{bench}_coverage"] = learned.get("coverage")
        flat[f"{bench}_spearman_source"] = reference.get("spearman")
        flat.update(
            _seen_pair_headline(report["seen_pairs"].get(bench), bench, last, last_trainable)
        )
    analogies = (report["analogies"] or {}).get(last, {})
    flat["analogy_accuracy"] = analogies.get("accuracy")
    flat["analogy_coverage"] = analogies.get("coverage")
    drift = report["drift"].get(last, {})
    flat["drift_seen_cosine"] = drift.get("seen_cosine")
    flat["drift_unseen_cosine"] = drift.get("unseen_cosine")
    flat["neighbour_jaccard"] = drift.get("probe_jaccard")
    moved = report["movement"].get(last_trainable, {}) if last_trainable else {}
    k = int(cfg.semantic.min_count_seen)
    bands = measures.frequency_bands(k, list(cfg.semantic.movement_bands))
    for suffix in ["", *(f"_{measures.band_name(*band)}" for band in bands)]:
        for measure in ("cosine", "relative_change", "words"):
            flat[f"movement_{measure}{suffix}"] = moved.get(f"{measure}{suffix}")
    lexicon = report["lexicon_probe"]
    flat["lexicon_probe_accuracy"] = lexicon[last]["after"]["accuracy"]
    flat["lexicon_probe_accuracy_before"] = lexicon[last]["before"]["accuracy"]
    flat["lexicon_probe_accuracy_source"] = lexicon["source"]["accuracy"]
    flat["lexicon_probe_majority"] = lexicon["source"]["majority"]
    flat["lexicon_probe_words"] = lexicon["source"]["words"]
    transfer = report["transfer_probe"]
    flat["transfer_probe_accuracy"] = transfer[last]["accuracy"]
    flat["transfer_probe_accuracy_source"] = transfer["source"]["accuracy"]
    flat["transfer_probe_majority"] = transfer["source"]["majority"]
    flat["transfer_probe_train_words"] = transfer["source"]["train_words"]
    flat["transfer_probe_test_words"] = transfer["source"]["test_words"]
    probe = report["trainlabel_probe"]
    flat["trainlabel_probe_accuracy"] = probe["channels"][last]["after"]
    flat["trainlabel_probe_accuracy_before"] = probe["channels"][last]["before"]
    flat["trainlabel_probe_majority"] = probe["majority_share"]
    flat["trainlabel_probe_words"] = probe["words"]
    return flat


def _seen_pair_headline(scores: dict | None, bench: str, last: str, last_trainable) -> dict:
    """rho, its CI, the pair count and the status on seen pairs, for the source, the last
    channel and the last trainable channel's update; None where not measured."""
    scores = scores or {}
    any_score = next(iter(scores.values()), {})
    flat = {
        f"{bench}_seen_pairs": any_score.get("pairs"),
        f"{bench}_seen_status": any_score.get("status", "unavailable"),
    }
    spaces = {"": last, "_source": "source", "_delta": f"{last_trainable}_delta"}
    for suffix, name in spaces.items():
        score = scores.get(name, {})
        flat[f"{bench}_seen_spearman{suffix}"] = score.get("spearman")
        flat[f"{bench}_seen_spearman{suffix}_ci_low"] = score.get("ci_low")
        flat[f"{bench}_seen_spearman{suffix}_ci_high"] = score.get("ci_high")
    return flat


# --- `embcompare evaluate` ----------------------------------------------------------------


# Launcher workers import only this module before they resolve ${evaluate_name:...}.
register_resolvers()


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
    if suffix == ".bin" and path.is_file() and _is_fasttext_model(path):
        return "fasttext_bin"
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix == ".txt":
        return "word2vec_text" if _has_count_header(path) else "glove_text"
    raise EmbcompareError(
        f"{path}: cannot tell the format from {suffix!r}; use .bin (word2vec binary, or a "
        "fastText model, told by its magic number), .vec "
        "(fastText), .txt (GloVe, or word2vec text with a 'count dim' line) or an npy_words dir"
    )


def _is_fasttext_model(path: Path) -> bool:
    """A .bin that starts with fastText's magic number is a whole fastText model, not word2vec."""
    from embcompare.vectors.subwords import FASTTEXT_MAGIC

    with open(path, "rb") as handle:
        first = handle.read(4)
    return len(first) == 4 and int.from_bytes(first, "little", signed=True) == FASTTEXT_MAGIC


def _has_count_header(path: Path) -> bool:
    with open(path, "rb") as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def evaluate_vectors(cfg: DictConfig) -> dict:
    """Similarity on every benchmark, analogies and probe-word neighbours of one vectors set."""
    from embcompare.vectors.pretrained import load_pretrained

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
