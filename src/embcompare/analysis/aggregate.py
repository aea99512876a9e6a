"""Collect finished runs into tables: one row per run, means with 95% CIs over seeds, and
paired setup-vs-baseline differences with significance tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

GROUP = ["dataset", "embedding", "model", "setup", "n"]
SHOWN = [
    "dataset",
    "embedding",
    "model",
    "setup",
    "n",
    "seed",
    "test_accuracy",
    "test_macro_f1",
    "dev_accuracy",
    "epochs",
    "train_seconds",
    "coverage_types",
]


def collect_runs(runs_dir: Path) -> pd.DataFrame:
    """One row per finished run; a run without metrics.json is unfinished and left out."""
    rows = []
    for metrics_file in sorted(Path(runs_dir).glob("*/metrics.json")):
        row = json.loads(metrics_file.read_text())
        row["run_dir"] = metrics_file.parent.name
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["n"] = table["n"].astype(str)  # 'all' beside integers
    return table


def collect_failures(runs_dir: Path) -> pd.DataFrame:
    """Runs that stopped with an error (error.txt) and never finished."""
    rows = []
    for error_file in sorted(Path(runs_dir).glob("*/error.txt")):
        if (error_file.parent / "metrics.json").exists():
            continue
        overrides = error_file.parent / ".hydra" / "overrides.yaml"
        rows.append(
            {
                "run_dir": error_file.parent.name,
                "overrides": " ".join(_yaml_list(overrides)) if overrides.exists() else "",
                "error": error_file.read_text().strip(),
            }
        )
    return pd.DataFrame(rows, columns=["run_dir", "overrides", "error"])


def _yaml_list(path: Path) -> list[str]:
    from omegaconf import OmegaConf

    return [str(item) for item in OmegaConf.load(path)]


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean, standard deviation and the half-width of a t-based confidence interval."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    if len(values) == 1:
        return float(values[0]), np.nan, np.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / np.sqrt(len(values)))
    return float(values.mean()), std, half


def summarize(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per dataset x embedding x model x setup x n: seeds, mean, std and 95% CI of each metric."""
    rows = []
    for key, group in runs.groupby(GROUP, sort=False):
        row = dict(zip(GROUP, key, strict=True))
        row["seeds"] = group["seed"].nunique()
        row["n_train"] = int(group["n_train"].median())
        for metric in (m for m in metrics if m in group):
            mean, std, half = mean_ci(group[metric].to_numpy())
            row.update({metric: mean, f"{metric}_std": std, f"{metric}_ci95": half})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["dataset", "embedding", "model", "setup", "n_train"])


def paired_differences(
    runs: pd.DataFrame, metric: str = "test_accuracy", baseline: str = "rand"
) -> pd.DataFrame:
    """Each setup minus the baseline, paired by seed (same sample, same split).

    The paired t-test is the main test; the Wilcoxon signed-rank test, which does not assume
    normal differences, is given too, though with 5 seeds its smallest p-value is 0.0625.
    """
    rows = []
    keys = ["dataset", "embedding", "model", "n"]
    for key, group in runs.groupby(keys, sort=False):
        base = group[group["setup"] == baseline].set_index("seed")[metric]
        for setup in sorted(set(group["setup"]) - {baseline}):
            other = group[group["setup"] == setup].set_index("seed")[metric]
            seeds = base.index.intersection(other.index)
            if seeds.empty:
                continue
            diff = (other.loc[seeds] - base.loc[seeds]).to_numpy()
            mean, std, half = mean_ci(diff)
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "n_train": int(group["n_train"].median()),
                    "comparison": f"{setup} - {baseline}",
                    "seeds": len(seeds),
                    "mean_difference": mean,
                    "ci95": half,
                    "t_test_p": _paired_t_p(diff),
                    "wilcoxon_p": _wilcoxon_p(diff),
                }
            )
    columns = [
        *keys,
        "n_train",
        "comparison",
        "seeds",
        "mean_difference",
        "ci95",
        "t_test_p",
        "wilcoxon_p",
    ]
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["dataset", "model", "comparison", "n_train"]
    )


def _paired_t_p(diff: np.ndarray) -> float:
    if len(diff) < 2 or np.allclose(diff, diff[0]):
        return np.nan
    return float(stats.ttest_1samp(diff, 0.0).pvalue)


def _wilcoxon_p(diff: np.ndarray) -> float:
    if len(diff) < 2 or np.all(diff == 0):
        return np.nan
    return float(stats.wilcoxon(diff).pvalue)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m embcompare.analysis.aggregate RUNS_DIR", file=sys.stderr)
        return 2
    table = collect_runs(Path(args[0]))
    if table.empty:
        print(
            f"embcompare: error: no finished runs (metrics.json) under {args[0]}", file=sys.stderr
        )
        return 2
    columns = [c for c in SHOWN if c in table]
    print(table[columns].sort_values(columns[:6]).to_string(index=False, float_format="%.4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
