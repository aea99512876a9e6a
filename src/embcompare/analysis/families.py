"""Is a task-trained Embedding like word2vec, GloVe or fastText? The families experiment's
tables (experiments/families.yaml):

- what each family's rows hold at n=all: similarity on seen pairs (both words seen >= 5 times
  in training, the same policy for every row), analogies and the lexicon polarity probe, for
  the pretrained vectors as trained (static), fine-tuned (nonstatic) and task-trained (rand);
- test accuracy by family and n;
- fastText's subword vectors for unseen words against random rows, paired by seed, on the test
  sentences that hold a word the vectors lack.

A run's family comes from its vectors' directory, `<engine>-<arch>-<corpus>-<dim>d` as
`embcompare pretrain` names it; other vectors (GloVe 6B) keep their embedding name.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from embcompare.analysis.aggregate import DROPPED_DEFAULTS, mean_ci, ordered_ns, plain_value
from embcompare.analysis.engines import objective, reference_of
from embcompare.analysis.verdicts import Check, Estimate, interval

ARCH_NAMES = {
    "sgns": "word2vec skip-gram",
    "cbow": "word2vec CBOW",
    "fasttext-sgns": "fastText skip-gram",
    "glove": "GloVe",
}
ENGINE_NAMES = {"gensim": "gensim", "mittens": "mittens", "keras": "Keras Embedding"}
KERAS = ENGINE_NAMES["keras"]
PUBLISHED = "published"  # the engine of vectors embcompare did not train (GloVe 6B)
TASK_LOSS = "the task's loss"  # the engine of the task-trained rows
_PRETRAINED_DIR = re.compile(r"(?P<engine>[a-z]+)-(?P<arch>.+)-(?P<corpus>[^-]+)-(?P<dim>\d+)d$")
ROLES = {
    "static": "as pretrained",
    "nonstatic": "fine-tuned on the task",
    "rand": "task-trained, Keras init",
    "rand_kim": "task-trained, Kim init",
}
TASK_TRAINED = ("rand", "rand_kim")
SIMILARITY = {"ws353": "WS-353", "simlex999": "SimLex-999", "men": "MEN"}


def family_of(embedding: str, path) -> tuple[str, str]:
    """(family, engine) of a run's vectors: from `<engine>-<arch>-<corpus>-<dim>d` when its
    path is an `embcompare pretrain` output, else (embedding name, 'published')."""
    name = plain_value(path).rstrip("/").rsplit("/", 1)[-1] if isinstance(path, str) else ""
    match = _PRETRAINED_DIR.fullmatch(name)
    if match is None or match["arch"] not in ARCH_NAMES:
        return embedding, PUBLISHED
    family = f"{ARCH_NAMES[match['arch']]}, {match['corpus']} {match['dim']}d"
    return family, ENGINE_NAMES.get(match["engine"], match["engine"])


def family_label(family: str, engine: str) -> str:
    """A family as tables and legends name it: with its engine where one family has two."""
    return family if engine in (PUBLISHED, TASK_LOSS) else f"{family} ({engine})"


def with_families(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `family`, `engine`, its `label` and `unseen` (random or subwords) to each run; the
    task-trained setups are their own family, whatever vectors decided their vocabulary."""
    runs = runs.copy()
    paths = runs["cfg.embedding.path"] if "cfg.embedding.path" in runs else [None] * len(runs)
    pairs = [family_of(e, p) for e, p in zip(runs["embedding"], paths, strict=True)]
    runs["family"] = [family for family, _ in pairs]
    runs["engine"] = [engine for _, engine in pairs]
    task = runs["setup"].isin(TASK_TRAINED)
    dims = runs["embedding_dim"].astype(int).astype(str) + "d"
    runs.loc[task, "family"] = "task-trained rand, " + dims[task]
    runs.loc[task, "engine"] = TASK_LOSS
    engines = zip(runs["family"], runs["engine"], strict=True)
    runs["label"] = [family_label(family, engine) for family, engine in engines]
    unseen_column = "cfg.embedding.unseen"
    unseen = runs.get(unseen_column, pd.Series(None, index=runs.index, dtype=object))
    runs["unseen"] = unseen.fillna(DROPPED_DEFAULTS[unseen_column]).map(plain_value)
    return runs


def holdings_table(runs: pd.DataFrame, n: str = "all") -> pd.DataFrame:
    """One row per family and role at n: similarity on seen pairs (mean over seeds of each
    run's Spearman, with the mean of its 95% bootstrap interval over pairs), the seen pairs
    scored, analogies (pretrained rows only: a rand matrix's analogy words are mostly rows no
    gradient reached), the lexicon probe above its majority rate, how far training moved the
    seen rows (|after - before| / |before|, mean over words seen >= 5 times) and test
    accuracy (95% CI over seeds)."""
    runs = with_families(runs)
    rows = []
    chosen = runs[(runs["n"].astype(str) == n) & (runs["unseen"] == "random")]
    for (family, engine, setup), group in chosen.groupby(["family", "engine", "setup"]):
        row = {"family": family, "engine": engine, "rows": ROLES.get(setup, setup)}
        for bench, label in SIMILARITY.items():
            row[f"{label} (seen pairs)"] = _pair_score(group, bench)
        row["seen pairs (WS/SimLex/MEN)"] = "/".join(
            _count(group, f"{bench}_seen_pairs") for bench in SIMILARITY
        )
        row["analogies"] = (
            "—" if setup in TASK_TRAINED else _mean_only(group, "analogy_accuracy", 100, "%")
        )
        row["lexicon probe − majority"] = _seed_ci(
            group["lexicon_probe_accuracy"] - group["lexicon_probe_majority"]
        )
        row["seen rows moved"] = (
            "—" if setup == "static" else _mean_only(group, "movement_relative_change", 100, "%")
        )
        row["test accuracy"] = _seed_ci(group["test_accuracy"], scale=100)
        row["seeds"] = len(group)
        row["_order"] = (_family_order(family, engine), list(ROLES).index(setup))
        rows.append(row)
    return _ordered(rows)


def holdings_points(runs: pd.DataFrame, n: str = "all") -> pd.DataFrame:
    """Per family and role at n: mean SimLex-999 on seen pairs and lexicon probe above
    majority, with their 95% CIs over seeds, for the figure."""
    runs = with_families(runs)
    chosen = runs[(runs["n"].astype(str) == n) & (runs["unseen"] == "random")].copy()
    chosen["probe_gain"] = chosen["lexicon_probe_accuracy"] - chosen["lexicon_probe_majority"]
    points = []
    for (family, engine, setup), group in chosen.groupby(["family", "engine", "setup"]):
        point = {"family": family, "engine": engine, "setup": setup, **_legend(group)}
        for metric in ("simlex999_seen_spearman", "probe_gain"):
            values = group[metric].astype(float) if metric in group else pd.Series(dtype=float)
            mean, _, half = mean_ci(values.to_numpy())
            point[metric], point[f"{metric}_ci95"] = mean, half
        points.append(point)
    return pd.DataFrame(points)


def curve_table(runs: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Test accuracy (points, mean [95% CI] over seeds) of each family and setup at each n."""
    runs = with_families(runs)
    runs = runs[runs["unseen"] == "random"]
    ns = ordered_ns(runs)
    rows = []
    for (family, engine, setup), group in runs.groupby(["family", "engine", "setup"]):
        row = {"family": family, "engine": engine, "setup": setup, **_by_n(group, ns, metric)}
        row["_order"] = (_family_order(family, engine), list(ROLES).index(setup))
        rows.append(row)
    return _ordered(rows)


def curve_points(runs: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Mean and CI half-width of `metric` per family, engine, setup and n (training size)."""
    runs = with_families(runs)
    runs = runs[runs["unseen"] == "random"]
    points = []
    keys = ["family", "engine", "setup", "n"]
    for (family, engine, setup, n), group in runs.groupby(keys):
        mean, _, half = mean_ci(group[metric].astype(float).to_numpy())
        points.append({
            "family": family, "engine": engine, "setup": setup, **_legend(group), "n": str(n),
            "n_train": int(group["n_train"].iloc[0]), metric: mean, f"{metric}_ci95": half,
            "repeats": len(group),
        })  # fmt: skip
    return pd.DataFrame(points)


def leader_lines(runs: pd.DataFrame) -> list[str]:
    """Which pretrained family helps most: at each setup and n, the family with the highest
    mean test accuracy over the seeds every family ran, and its lead over the runner-up,
    paired by seed (a seed draws the same training sample for every family). An estimate, not
    a verdict: the leader is picked by the same numbers, so its lead cannot come out below 0."""
    runs = with_families(runs)
    runs = runs[(runs["unseen"] == "random") & ~runs["setup"].isin(TASK_TRAINED)]
    lines = []
    for setup in [s for s in ROLES if s in set(runs["setup"])]:
        for n in ordered_ns(runs[runs["setup"] == setup]):
            at = runs[(runs["setup"] == setup) & (runs["n"].astype(str) == n)]
            by_family = {
                label: rows.set_index("seed")["test_accuracy"].astype(float)
                for label, rows in at.groupby("label")
            }
            if len(by_family) < 2:
                continue
            seeds = sorted(set.intersection(*(set(acc.index) for acc in by_family.values())))
            ranked = sorted(by_family, key=lambda k: by_family[k].loc[seeds].mean(), reverse=True)
            first, second = ranked[:2]
            lead = interval((by_family[first] - by_family[second]).loc[seeds].to_numpy())
            lines.append(
                f"{setup} at n={n}: {first} leads {second} by "
                f"{lead.text(scale=100, digits=1)} (points)"
            )
    return lines


def subword_checks(runs: pd.DataFrame) -> list[Check]:
    """For each vectors set run both ways: accuracy on test sentences holding a word the
    vectors lack, subword vectors minus random rows, paired by seed, at each setup and n."""
    runs = with_families(runs)
    checks = []
    both = runs.groupby(["embedding", "setup", "n"])["unseen"].nunique()
    ns = ordered_ns(runs)
    cells = sorted(
        both[both > 1].index,
        key=lambda cell: (cell[0], list(ROLES).index(cell[1]), ns.index(str(cell[2]))),
    )
    for embedding, setup, n in cells:
        group = runs[(runs["embedding"] == embedding) & (runs["setup"] == setup)]
        group = group[group["n"].astype(str) == str(n)]
        by_policy = {
            policy: rows.set_index("seed")["test_accuracy_oov_words"].astype(float)
            for policy, rows in group.groupby("unseen")
        }
        shared = by_policy["subwords"].index.intersection(by_policy["random"].index)
        gain = by_policy["subwords"].loc[shared] - by_policy["random"].loc[shared]
        sentences = int(group["test_sentences_oov_words"].iloc[0])
        family, engine = group[["family", "engine"]].iloc[0]
        checks.append(
            Check(
                f"{family} ({engine}), {setup} at n={n}: accuracy on the {sentences} test "
                "sentences holding a word the vectors lack, subword vectors minus random rows",
                interval(gain.to_numpy()),
                scale=100,
                digits=1,
            )
        )
    return checks


def oov_table(runs: pd.DataFrame, setup: str = "static") -> pd.DataFrame:
    """Accuracy on test sentences holding a word the vectors lack, per family, unseen-word
    policy and n, for one setup: where each family stands on words it never saw."""
    runs = with_families(runs)
    runs = runs[runs["setup"] == setup]
    ns = ordered_ns(runs)
    rows = []
    for (family, engine, unseen), group in runs.groupby(["family", "engine", "unseen"]):
        row = {"family": family, "engine": engine, "unseen words get": unseen}
        row["sentences"] = _count(group, "test_sentences_oov_words")
        row |= _by_n(group, ns, "test_accuracy_oov_words")
        row["_order"] = (_family_order(family, engine), unseen != "random")
        rows.append(row)
    return _ordered(rows)


QUALITY_SHARE = 0.95  # the goal: Keras reaches 95% of its reference's Spearman ...
TIME_RATIO = 5.0  # ... in at most 5x its time


def engine_checks(pretraining: pd.DataFrame) -> list[Check]:
    """Each Keras objective against its reference engine (same corpus and dimension): its
    Spearman as a share of the reference's on the pairs both cover, decided by the bootstrap
    95% CI over pairs against QUALITY_SHARE."""
    checks = []
    for ours, theirs in _engine_pairs(pretraining):
        for bench, label in SIMILARITY.items():
            if pd.isna(ours.get(f"{bench}_ratio_ci_low")):
                continue
            estimate = Estimate(
                ours[f"{bench}_ratio"], ours[f"{bench}_ratio_ci_low"],
                ours[f"{bench}_ratio_ci_high"], 1000, "bootstrap resamples of pairs",
            )  # fmt: skip
            checks.append(
                Check(
                    f"{ARCH_NAMES[objective(ours)]}: Keras / {theirs['method']} {label} Spearman "
                    f"on the {int(ours[f'{bench}_ratio_pairs'])} pairs both cover",
                    estimate,
                    threshold=QUALITY_SHARE,
                )
            )
    return checks


def engine_table(pretraining: pd.DataFrame) -> pd.DataFrame:
    """One row per objective: Keras's and the reference's whole-benchmark Spearman, Keras's
    share on the pairs both cover, and the training-time ratio (one run each)."""
    rows = []
    for ours, theirs in _engine_pairs(pretraining):
        row = {"objective": ARCH_NAMES[objective(ours)], "reference": theirs["method"]}
        for bench, label in SIMILARITY.items():
            row[f"{label} Keras / reference"] = (
                f"{ours[f'{bench}_spearman']:.3f} / {theirs[f'{bench}_spearman']:.3f}"
            )
            row[f"{label} share"] = _share(ours, bench)
        ratio = ours["train_seconds"] / theirs["train_seconds"]
        row["minutes, Keras / reference"] = (
            f"{ours['train_seconds'] / 60:.0f} / {theirs['train_seconds'] / 60:.0f} = {ratio:.1f}x"
        )
        row[f"time <= {TIME_RATIO:g}x"] = "yes" if ratio <= TIME_RATIO else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def _engine_pairs(pretraining: pd.DataFrame):
    if "method" not in pretraining:
        return
    keras = pretraining[pretraining["method"].str.startswith("keras_")]
    for _, ours in keras.sort_values("arch").iterrows():
        theirs = reference_of(pretraining, ours)
        if theirs is not None and objective(ours) in ARCH_NAMES:
            yield ours, theirs


def _share(row, bench: str) -> str:
    if pd.isna(row.get(f"{bench}_ratio_ci_low")):
        return "no interval"
    return (
        f"{row[f'{bench}_ratio']:.2f} [{row[f'{bench}_ratio_ci_low']:.2f}, "
        f"{row[f'{bench}_ratio_ci_high']:.2f}]"
    )


def _legend(group: pd.DataFrame) -> dict:
    """What a figure needs to name and colour a family's points (plot.py)."""
    engine = group["engine"].iloc[0]
    return {"label": group["label"].iloc[0], "keras": engine == KERAS,
            "task_trained": engine == TASK_LOSS}  # fmt: skip


def _by_n(group: pd.DataFrame, ns: list[str], metric: str) -> dict[str, str]:
    """`n=<n>` -> the metric's mean [95% CI] over seeds in points, '' where n was not run."""
    cells = {}
    for n in ns:
        at_n = group[group["n"].astype(str) == n][metric]
        cells[f"n={n}"] = _seed_ci(at_n, scale=100) if len(at_n) else ""
    return cells


def _pair_score(group: pd.DataFrame, bench: str) -> str:
    column = f"{bench}_seen_spearman"
    if column not in group or group[column].isna().all():
        return "too few pairs"
    mean = group[column].astype(float).mean()
    low = group[f"{column}_ci_low"].astype(float).mean()
    high = group[f"{column}_ci_high"].astype(float).mean()
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _seed_ci(values: pd.Series, scale: float = 1.0) -> str:
    digits = 1 if scale == 100 else 3
    mean, _, half = mean_ci(values.astype(float).to_numpy())
    if not math.isfinite(mean):
        return "not measured"
    if not math.isfinite(half) or len(values) < 3:
        return f"{scale * mean:.{digits}f} ({len(values)} seeds)"
    low, high = scale * (mean - half), scale * (mean + half)
    return f"{scale * mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _mean_only(group: pd.DataFrame, column: str, scale: float, unit: str) -> str:
    if column not in group or group[column].isna().all():
        return "not measured"
    return f"{scale * group[column].astype(float).mean():.1f}{unit}"


def _count(group: pd.DataFrame, column: str) -> str:
    if column not in group or group[column].isna().all():
        return "—"
    values = sorted({int(v) for v in group[column].dropna()})
    return "–".join(str(v) for v in (values[0], values[-1])) if len(values) > 1 else str(values[0])


def _family_order(family: str, engine: str) -> tuple:
    """Published vectors first, then the IMDB families (reference engine before Keras), then
    the task-trained rows."""
    kind = 2 if engine == TASK_LOSS else 0 if engine == PUBLISHED else 1
    return kind, family, engine == KERAS


def _ordered(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).sort_values("_order", kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)

