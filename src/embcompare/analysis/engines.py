"""The engines of `embcompare pretrain` side by side: one row per pretraining output, and for
each Keras SGNS run a bootstrap interval of its Spearman as a share of gensim skip-gram's on
the same corpus and dimension (claim (d) reads both)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from embcompare.analysis.measures import bootstrap_spearmans
from embcompare.analysis.similarity import Space, pair_cosines, pair_rows
from embcompare.analysis.word_benchmarks import WordPairs
from embcompare.vectors.pretrained import read_cache

RATIO_BENCHMARKS = ("ws353", "simlex999")


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
    """Add `<bench>_ratio_ci_low/high` to each Keras SGNS row that has exactly one gensim
    skip-gram partner: the 95% percentile interval of rho(Keras) / rho(gensim) over the same
    bootstrap resamples of the pairs both vocabularies cover."""
    table = table.copy()
    gensim = table[(table["method"] == "gensim") & (table["arch"] == "sgns")]
    for index, ours in table[table["method"] == "keras_sgns"].iterrows():
        partner = gensim[(gensim["corpus"] == ours["corpus"]) & (gensim["dim"] == ours["dim"])]
        if len(partner) != 1:
            continue
        spaces = [
            _space(Path(pretrained_dir) / name, lowercase)
            for name in (ours["name"], partner.iloc[0]["name"])
        ]
        for bench in RATIO_BENCHMARKS:
            if bench in benchmarks:
                low, high = ratio_interval(spaces, benchmarks[bench], resamples, seed)
                table.loc[index, [f"{bench}_ratio_ci_low", f"{bench}_ratio_ci_high"]] = low, high
    return table


def _space(directory: Path, lowercase: bool) -> Space:
    vectors = read_cache(directory, directory.name)
    return Space(directory.name, vectors.words, np.asarray(vectors.vectors), lowercase)


def ratio_interval(
    spaces: list[Space], pairs: WordPairs, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile 95% interval of rho(spaces[0]) / rho(spaces[1]) over pair resamples."""
    cosines, covered = [], np.ones(len(pairs), dtype=bool)
    for space in spaces:
        first, second, known = pair_rows(space, pairs)
        covered &= known
        cosines.append((first, second, space))
    gold = pairs.gold[covered]
    ours, theirs = (
        pair_cosines(space, first[covered], second[covered]) for first, second, space in cosines
    )
    picks = np.random.default_rng(seed).integers(0, len(gold), size=(resamples, len(gold)))
    ratios = bootstrap_spearmans(gold, ours, picks) / bootstrap_spearmans(gold, theirs, picks)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)
