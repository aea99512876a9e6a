"""The engines of `embcompare pretrain` side by side: one row per pretraining output, and for
each Keras objective a bootstrap interval of its Spearman as a share of its reference engine's
(gensim's word2vec and fastText, mittens' GloVe) on the same corpus and dimension (claim (d)
reads the skip-gram rows, the families report all of them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from embcompare.analysis.measures import bootstrap_spearmans
from embcompare.analysis.similarity import Space, pair_cosines, pair_rows, spearman
from embcompare.analysis.word_benchmarks import WordPairs
from embcompare.vectors.pretrained import read_cache

RATIO_BENCHMARKS = ("ws353", "simlex999", "men")


PRETRAINING_COLUMNS = ["name", "method", "arch", "corpus", "dim", "tokens", "train_seconds"]


def pretraining_table(pretrained_dir: Path) -> pd.DataFrame:
    """One row per `embcompare pretrain` output: engine, corpus, size, time, Spearman scores."""
    rows = []
    for path in sorted(Path(pretrained_dir).glob("*/pretrain.json")):
        info = json.loads(path.read_text())
        settings = info["settings"]
        row = {
            "name": path.parent.name,
            "method": settings["method"],
            "arch": info.get("arch", ""),
            "corpus": settings["corpus"],
            "dim": settings["dim"],
            "tokens": info["tokens"],
            "train_seconds": info["train_seconds"],
        }
        for bench, scores in info["similarity"].items():
            row[f"{bench}_spearman"] = scores["spearman"]
            for bound in ("ci_low", "ci_high"):
                if bound in scores:
                    row[f"{bench}_ratio_{bound}"] = scores[bound]
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else PRETRAINING_COLUMNS)


def with_ratio_intervals(
    table: pd.DataFrame,
    pretrained_dir: Path,
    benchmarks: dict[str, WordPairs],
    lowercase: bool,
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Add to each Keras row that has exactly one reference partner (the same objective by
    gensim or mittens, same corpus and dimension) rho(Keras) / rho(reference) on the pairs both
    vocabularies cover (`<bench>_ratio`, their count `<bench>_ratio_pairs`) and its 95%
    percentile interval over the same bootstrap resamples of those pairs
    (`<bench>_ratio_ci_low/high`)."""
    table = table.copy()
    for index, ours in table[table["method"].str.startswith("keras_")].iterrows():
        partner = reference_of(table, ours)
        if partner is None:
            continue
        names = (ours["name"], partner["name"])
        spaces = [_space(Path(pretrained_dir) / name, lowercase) for name in names]
        for bench in RATIO_BENCHMARKS:
            if bench in benchmarks:
                gold, ours_cos, theirs_cos = _shared_pair_cosines(spaces, benchmarks[bench])
                low, high = _percentile_interval(gold, ours_cos, theirs_cos, resamples, seed)
                ratio = spearman(gold, ours_cos) / spearman(gold, theirs_cos)
                columns = [f"{bench}_ratio{end}" for end in ("", "_ci_low", "_ci_high", "_pairs")]
                table.loc[index, columns] = ratio, low, high, len(gold)
    return table


def objective(row) -> str:
    """What a pretraining row trained: its arch (sgns, cbow, glove), as fasttext-<arch> for
    the subword methods, whose arch alone would match word2vec's."""
    return f"fasttext-{row['arch']}" if "fasttext" in row["method"] else row["arch"]


def reference_of(table: pd.DataFrame, keras_row) -> pd.Series | None:
    """The one reference-engine row (not Keras) of the same objective, corpus and dimension."""
    same = table[
        ~table["method"].str.startswith("keras_")
        & (table.apply(objective, axis=1) == objective(keras_row))
        & (table["corpus"] == keras_row["corpus"])
        & (table["dim"] == keras_row["dim"])
    ]
    return same.iloc[0] if len(same) == 1 else None


def _space(directory: Path, lowercase: bool) -> Space:
    vectors = read_cache(directory, directory.name)
    return Space(directory.name, vectors.words, np.asarray(vectors.vectors), lowercase)


def ratio_interval(
    spaces: list[Space], pairs: WordPairs, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile 95% interval of rho(spaces[0]) / rho(spaces[1]) over pair resamples."""
    return _percentile_interval(*_shared_pair_cosines(spaces, pairs), resamples, seed)


def _percentile_interval(gold, ours, theirs, resamples: int, seed: int) -> tuple[float, float]:
    picks = np.random.default_rng(seed).integers(0, len(gold), size=(resamples, len(gold)))
    ratios = bootstrap_spearmans(gold, ours, picks) / bootstrap_spearmans(gold, theirs, picks)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def _shared_pair_cosines(spaces: list[Space], pairs: WordPairs):
    """Gold scores and each space's cosines on the pairs that every space covers."""
    rows, covered = [], np.ones(len(pairs), dtype=bool)
    for space in spaces:
        first, second, known = pair_rows(space, pairs)
        covered &= known
        rows.append((first, second, space))
    cosines = [pair_cosines(space, one[covered], two[covered]) for one, two, space in rows]
    return pairs.gold[covered], *cosines
