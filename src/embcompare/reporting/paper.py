"""Published numbers beside ours: Kim (2014) Table 2 (accuracy) and Table 3 (neighbours).

Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014. His numbers come
from the GoogleNews word2vec 300d vectors; ours from whichever vectors a run used, named in
every table. An experiment asks for this section with `report_paper: kim2014`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from embcompare.errors import EmbcompareError

PAPER = "Kim (2014)"
PAPER_VECTORS = "word2vec GoogleNews 300d"
SETUPS = ["rand", "static", "nonstatic", "multichannel"]
# our setup name -> Kim's row: his CNN-rand is our rand_kim (his variance-matched init), not our
# rand (Keras's default U(-0.05, 0.05)), which his table has no row for
KIM_SETUP_OF = {
    "rand_kim": "rand",
    "static": "static",
    "nonstatic": "nonstatic",
    "multichannel": "multichannel",
}
# our dataset config name -> Kim's column
DATASETS = {
    "mr": "MR",
    "sst2_phrases": "SST-2",
    "subj": "Subj",
    "trec": "TREC",
    "cr": "CR",
    "mpqa": "MPQA",
}
# Table 2, accuracy in %, in the column order of DATASETS.
_TABLE2_ROWS = {
    "rand": (76.1, 82.7, 89.6, 91.2, 79.8, 83.4),
    "static": (81.0, 86.8, 93.0, 92.8, 84.7, 89.6),
    "nonstatic": (81.5, 87.2, 93.4, 93.6, 84.3, 89.5),
    "multichannel": (81.1, 88.1, 93.2, 92.2, 85.0, 89.4),
}
TABLE2 = {setup: dict(zip(DATASETS, row, strict=True)) for setup, row in _TABLE2_ROWS.items()}
# Table 3's probe words (Kim trained these neighbours on SST-2).
TABLE3_WORDS = ["good", "bad"]


def side_by_side(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per vectors x dataset x setup: our mean and 95% CI over repeats (folds and
    seeds), Kim's number, and ours minus his, all in accuracy points."""
    rows = []
    for _, row in summary.iterrows():
        setup = KIM_SETUP_OF.get(row["setup"])
        if row["dataset"] not in DATASETS or setup is None:
            continue
        ours = 100 * row["test_accuracy"]
        published = TABLE2[setup][row["dataset"]]
        rows.append(
            {
                "embedding": row["embedding"],
                "dataset": DATASETS[row["dataset"]],
                "setup": setup,
                "repeats": int(row["repeats"]),
                "ours": ours,
                # fewer than 3 repeats: no interval worth drawing or printing
                "ours_ci95": 100 * row["test_accuracy_ci95"] if row["repeats"] >= 3 else np.nan,
                "kim": published,
                "difference": ours - published,
            }
        )
    columns = ["embedding", "dataset", "setup", "repeats", "ours", "ours_ci95", "kim", "difference"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["embedding", "dataset"], key=_paper_order, kind="stable")


def table2_layout(compared: pd.DataFrame, embedding: str) -> pd.DataFrame:
    """Kim's Table 2 shape, setups down and datasets across: `ours ± ci (Kim; difference)`."""
    chosen = compared[compared["embedding"] == embedding]
    table = {}
    for setup in SETUPS:
        cells = {"setup": setup}
        for dataset in DATASETS.values():
            match = chosen[(chosen["setup"] == setup) & (chosen["dataset"] == dataset)]
            if match.empty:
                cells[dataset] = f"— ({TABLE2[setup][_key(dataset)]})"
                continue
            row = match.iloc[0]
            count = int(row["repeats"])
            spread = (
                f" ± {row['ours_ci95']:.1f}"
                if count >= 3
                else f" ({count} run{'s' if count > 1 else ''}, no CI)"
            )
            cells[dataset] = (
                f"{row['ours']:.1f}{spread} ({row['kim']:.1f}; {row['difference']:+.1f})"
            )
        table[setup] = cells
    return pd.DataFrame(list(table.values()))


def _key(label: str) -> str:
    return next(key for key, shown in DATASETS.items() if shown == label)


def repeats_line(compared: pd.DataFrame, embedding: str) -> str:
    """How many repeats each dataset's cells average, e.g. 'MR 10, SST-2 3-5'."""
    chosen = compared[compared["embedding"] == embedding]
    parts = []
    for label in DATASETS.values():
        counts = chosen.loc[chosen["dataset"] == label, "repeats"]
        if counts.empty:
            continue
        low, high = int(counts.min()), int(counts.max())
        parts.append(f"{label} {low}" if low == high else f"{label} {low}-{high}")
    return "Repeats per cell: " + ", ".join(parts) + "."


def ordering_findings(runs: pd.DataFrame) -> list[str]:
    """Whether Kim's ordering rand < static <= nonstatic holds, per vectors and dataset, from
    paired differences over repeats (the same fold and seed): each step holds when its 95% CI
    lies above 0, fails when it lies below, and is inconclusive otherwise."""
    from embcompare.analysis.aggregate import paired_differences
    from embcompare.analysis.verdicts import Check, Verdict, paired_estimate

    lines = []
    runs = runs[runs["dataset"].isin(DATASETS)]
    order = {key: i for i, key in enumerate(DATASETS)}
    keys = sorted(runs.groupby(["embedding", "dataset"]).groups, key=lambda k: (k[0], order[k[1]]))
    for embedding, dataset in keys:
        chosen = runs[(runs["embedding"] == embedding) & (runs["dataset"] == dataset)]
        steps = [("static", "rand_kim"), ("nonstatic", "static")]
        if not {"rand_kim", "static", "nonstatic"} <= set(chosen["setup"]):
            lines.append(
                f"{embedding}, {DATASETS[dataset]}: ordering not checked (a setup is missing)."
            )
            continue
        verdict = Verdict("rand < static <= nonstatic")
        for higher, lower in steps:
            paired = paired_differences(chosen, baselines=(lower,))
            row = paired[paired["comparison"] == f"{higher} - {lower}"].iloc[0]
            estimate = paired_estimate(row, "repeats")
            verdict.checks.append(Check(f"{higher} - {lower}", estimate, scale=100, digits=1))
        shown = "; ".join(f"{c.what} {c.estimate.text(100, 1)}" for c in verdict.checks)
        lines.append(f"{embedding}, {DATASETS[dataset]}: {shown} -> {verdict.label}.")
    return lines


def neighbour_table(
    runs: pd.DataFrame, runs_dir: Path, dataset: str = "sst2_phrases", k: int = 5
) -> pd.DataFrame:
    """Table 3's counterpart: the k nearest neighbours of 'good' and 'bad' in the static vectors
    and after fine-tuning (nonstatic), from the first repeat of each run on `dataset`."""
    chosen = runs[(runs["dataset"] == dataset) & runs["setup"].isin(["static", "nonstatic"])]
    rows = []
    for (embedding, setup), frame in chosen.groupby(["embedding", "setup"], sort=False):
        run_dir = Path(runs_dir) / frame.sort_values("seed")["run_dir"].iloc[0]
        neighbours = _read_neighbours(run_dir / "neighbours.csv")
        after = neighbours[(neighbours["stage"] == "after") & (neighbours["rank"] <= k)]
        for word in TABLE3_WORDS:
            listed = after[after["word"] == word].sort_values("rank")["neighbour"]
            rows.append(
                {
                    "embedding": embedding,
                    "word": word,
                    "setup": setup,
                    "neighbours": ", ".join(listed) if len(listed) else "(not in vocabulary)",
                }
            )
    table = pd.DataFrame(rows, columns=["embedding", "word", "setup", "neighbours"])
    return table.sort_values(["embedding", "word", "setup"], ascending=[True, True, False])


def _read_neighbours(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise EmbcompareError(f"{path}: missing; the run was made with semantic.enabled=false")
    frame = pd.read_csv(path, keep_default_na=False)  # 'nan' and 'null' are words here
    # multichannel writes one block per channel; the others have one channel
    return frame[frame["channel"] == frame["channel"].iloc[-1]]


def wall_time(runs: pd.DataFrame) -> pd.DataFrame:
    """Summed run time per vectors and dataset (every stage of every run), in minutes."""
    grouped = runs.groupby(["embedding", "dataset"], sort=False)["total_seconds"]
    table = grouped.agg(runs="count", minutes=lambda s: s.sum() / 60).reset_index()
    table["dataset"] = table["dataset"].map(lambda d: DATASETS.get(d, d))
    table["minutes_per_run"] = (table["minutes"] / table["runs"]).round(2)
    table["minutes"] = table["minutes"].round(1)
    return table.sort_values(["embedding", "dataset"], key=_paper_order, ignore_index=True)


def _paper_order(column: pd.Series) -> pd.Series:
    """Sort key: datasets (keys or shown names) in Table 2's column order, other columns as is."""
    if column.name != "dataset":
        return column
    order = {name: i for i, name in enumerate(DATASETS.values())} | {
        key: i for i, key in enumerate(DATASETS)
    }
    return column.map(lambda d: order.get(d, len(order)))
