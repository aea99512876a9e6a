"""Collect finished runs into tables: one row per run, means with 95% CIs over repeats, and
paired setup-vs-baseline differences.

A group is a whole config: every `cfg.*` column of a run (its resolved config, flattened by
`config.config_record`) except the repeat keys (seed, fold). Runs that differ in any other value
are never averaged together; they get separate rows, labelled in `variant` by the values that
differ. A paired difference pairs runs that differ only in the compared key and share a repeat.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from embcompare.config import LEFT_OUT_AT_DEFAULT
from embcompare.errors import EmbcompareError

SHOWN = ["dataset", "embedding", "model", "setup", "n"]
REPEAT_KEYS = ["cfg.seed", "cfg.dataset.split.fold"]
# Settings that change only what a run prints; runs recorded by versions that kept them in the
# config record must still group with runs that do not.
DISPLAY_KEYS = ["cfg.verbose", "cfg.train.progress"]
BASELINES = ("rand", "rand_kim")
# Config values a run's record leaves out at their default (config.LEFT_OUT_AT_DEFAULT), as
# the record's JSON text: tables show them by value, not as missing.
DROPPED_DEFAULTS = {
    f"cfg.{group}.{key}": json.dumps(value) for (group, key), value in LEFT_OUT_AT_DEFAULT.items()
}
LISTED = [
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
        row = _metrics_row(metrics_file)
        row["run_dir"] = metrics_file.parent.name
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["n"] = table["n"].astype(str)  # 'all' beside integers
    return table


def _metrics_row(metrics_file: Path) -> dict:
    try:
        row = json.loads(metrics_file.read_text())
    except ValueError as error:
        raise EmbcompareError(
            f"{metrics_file}: not valid JSON ({error}); delete it to run that config again"
        ) from None
    if not isinstance(row, dict):
        raise EmbcompareError(f"{metrics_file}: expected a JSON object of metrics")
    return row


def collect_failures(runs_dir: Path) -> pd.DataFrame:
    """Runs that stopped with an error (error.json; error.txt before it) and never finished."""
    rows = []
    found = (Path(runs_dir).glob(f"*/{name}") for name in ("error.json", "error.txt"))
    run_dirs = {path.parent for paths in found for path in paths}
    for run_dir in sorted(run_dirs):
        if (run_dir / "metrics.json").exists():
            continue
        overrides = run_dir / ".hydra" / "overrides.yaml"
        rows.append(
            {
                "run_dir": run_dir.name,
                "overrides": " ".join(_yaml_list(overrides)) if overrides.exists() else "",
                "error": _error_message(run_dir),
            }
        )
    return pd.DataFrame(rows, columns=["run_dir", "overrides", "error"])


def _error_message(run_dir: Path) -> str:
    if (run_dir / "error.json").is_file():
        try:
            return str(json.loads((run_dir / "error.json").read_text())["message"]).strip()
        except (ValueError, KeyError, TypeError):
            return f"{run_dir / 'error.json'} is unreadable"
    return (run_dir / "error.txt").read_text().strip()


def _yaml_list(path: Path) -> list[str]:
    from omegaconf import OmegaConf

    return [str(item) for item in OmegaConf.load(path)]


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean, standard deviation and the half-width of a t-based confidence interval.

    With one value there is no spread to estimate: std and half-width are NaN, never 0.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    if len(values) == 1:
        return float(values[0]), np.nan, np.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / np.sqrt(len(values)))
    return float(values.mean()), std, half


def config_columns(runs: pd.DataFrame) -> list[str]:
    return sorted(c for c in runs.columns if c.startswith("cfg."))


def group_columns(runs: pd.DataFrame) -> list[str]:
    """The columns whose values make a config; tables without a config record (runs from
    before it existed) fall back to the shown keys, and the duplicate check still refuses
    to pool two runs of one seed."""
    configs = [c for c in config_columns(runs) if c not in REPEAT_KEYS + DISPLAY_KEYS]
    return configs or SHOWN


def repeat_columns(runs: pd.DataFrame) -> list[str]:
    present = [c for c in REPEAT_KEYS if c in runs]
    return present or ["seed"]


def repeat_unit(runs: pd.DataFrame) -> str:
    """'folds' when runs differ by cross-validation fold, else 'seeds'."""
    fold = "cfg.dataset.split.fold"
    return "folds" if fold in runs and runs[fold].nunique() > 1 else "seeds"


def with_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `variant`: the config values, beyond the shown keys and repeats, that tell this
    run's group apart from others with the same shown keys ('' when nothing else differs);
    `setup_variant` holds the part of it that belongs to the setup's own values."""
    runs = runs.copy()
    for column, default in DROPPED_DEFAULTS.items():
        if column in runs:
            runs[column] = runs[column].fillna(default)
    extra = []
    shown_groups = runs.groupby(SHOWN, dropna=False, sort=False)
    for column in group_columns(runs):
        if column in SHOWN or runs[column].nunique(dropna=False) < 2:
            continue
        if (shown_groups[column].nunique(dropna=False) > 1).any():
            extra.append(column)
    runs["variant"] = _labels(runs, extra)
    runs["setup_variant"] = _labels(runs, [c for c in extra if _is_setup_column(c)])
    runs["pairing_variant"] = _labels(runs, [c for c in extra if not _is_setup_column(c)])
    return runs


def _is_setup_column(column: str) -> bool:
    return column == "setup" or column.startswith("cfg.setup.")


def _labels(runs: pd.DataFrame, columns: list[str]) -> list[str]:
    if not columns:
        return [""] * len(runs)
    return [
        ", ".join(
            f"{c.removeprefix('cfg.')}={plain_value(v)}" for c, v in zip(columns, row, strict=True)
        )
        for row in runs[columns].itertuples(index=False, name=None)
    ]


def plain_value(value) -> str:
    """A `cfg.*` cell as text: its JSON decoded, 'missing' where the run has no such value."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else json.dumps(decoded)
    return "missing" if pd.isna(value) else str(value)


def config_groups(runs: pd.DataFrame):
    """(rows of one config) for each config; refuses two runs of one config and repeat."""
    repeats = repeat_columns(runs)
    for _, group in runs.groupby(group_columns(runs), dropna=False, sort=False):
        duplicated = group.duplicated(repeats, keep=False)
        if duplicated.any():
            names = ", ".join(group.loc[duplicated, "run_dir"].astype(str))
            raise EmbcompareError(
                f"runs {names} share a config and a repeat ({', '.join(repeats)}) but are "
                "different runs: their configs differ in a value the table does not record; "
                "move one of them to another runs folder"
            )
        yield group


def summarize(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per config: repeats, mean, std and 95% CI of each metric, and for each metric
    how many repeats gave a value (`<metric>_repeats`), so a mean over fewer is visible."""
    runs = with_variants(runs)
    rows = []
    for group in config_groups(runs):
        first = group.iloc[0]
        row = {key: first[key] for key in [*SHOWN, "variant"]}
        row["repeats"] = len(group)
        row["n_train"] = int(group["n_train"].median())
        for metric in (m for m in metrics if m in group):
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(dtype=float)
            mean, std, half = mean_ci(values)
            row.update(
                {
                    metric: mean,
                    f"{metric}_std": std,
                    f"{metric}_ci95": half,
                    f"{metric}_repeats": int(np.isfinite(values).sum()),
                }
            )
        rows.append(row)
    summary = pd.DataFrame(rows)
    return summary.sort_values(
        ["dataset", "embedding", "model", "variant", "setup", "n_train"], key=setup_order
    )


SETUP_ORDER = ["rand", "rand_kim", "static", "nonstatic", "multichannel"]


def ordered_ns(runs: pd.DataFrame) -> list[str]:
    """The training sizes present, smallest first and 'all' last."""
    ns = {str(n) for n in runs["n"]}
    return sorted(ns, key=lambda n: (n == "all", int(n) if n.isdigit() else 0))


def setup_order(column: pd.Series) -> pd.Series:
    """Sort key: setups in one fixed order (others after them, by name); other columns as is."""
    if column.name != "setup":
        return column
    rank = {name: f"{i:02d}" for i, name in enumerate(SETUP_ORDER)}
    return column.map(lambda name: rank.get(name, f"99{name}"))


def paired_differences(
    runs: pd.DataFrame,
    metric: str = "test_accuracy",
    baselines: tuple[str, ...] = BASELINES,
) -> pd.DataFrame:
    """Each setup minus each baseline setup, paired by repeat: the two runs differ only in the
    setup's config values (same sample, split and everything else).

    A setup swept over its own values (say two init scales) is compared once per value, named
    `rand[setup.channels.0.init_scale=0.5]`. The paired t-interval is the estimate a verdict
    reads. The Wilcoxon signed-rank p-value is given only where the repeats could reach
    p < 0.05 at all (6 or more nonzero differences); with 5 its smallest value is 0.0625.
    """
    runs = with_variants(runs)
    pairing = [c for c in group_columns(runs) if not _is_setup_column(c)]
    repeats = repeat_columns(runs)
    rows = []
    for _, group in runs.groupby(pairing or ["dataset"], dropna=False, sort=False):
        arms = {}
        for config in config_groups(group):
            first = config.iloc[0]
            label = first["setup"] + (
                f"[{first['setup_variant']}]" if first["setup_variant"] else ""
            )
            arms[label] = (first["setup"], config.set_index(repeats)[metric])
        for base_label, (base_setup, base) in arms.items():
            if base_setup not in baselines:
                continue
            for label, (setup, values) in sorted(arms.items()):
                if setup not in baselines:
                    rows.append(_paired_row(group, f"{label} - {base_label}", values, base))
    frame = pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)
    frame = frame.dropna(subset=["mean_difference"])
    return frame.sort_values(["dataset", "embedding", "model", "variant", "comparison", "n_train"])


DIFFERENCE_COLUMNS = [
    *[k for k in SHOWN if k != "setup"],
    "variant",
    "n_train",
    "comparison",
    "repeats",
    "mean_difference",
    "ci_low",
    "ci_high",
    "t_test_p",
    "wilcoxon_p",
]


def _paired_row(group, comparison: str, other: pd.Series, base: pd.Series) -> dict:
    shared = base.index.intersection(other.index)
    diff = (other.loc[shared] - base.loc[shared]).to_numpy(dtype=float)
    diff = diff[np.isfinite(diff)]
    mean, _, half = mean_ci(diff)
    first = group.iloc[0]
    return {
        **{k: first[k] for k in SHOWN if k != "setup"},
        "variant": first["pairing_variant"],
        "n_train": int(group["n_train"].median()),
        "comparison": comparison,
        "repeats": len(diff),
        "mean_difference": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "t_test_p": _paired_t_p(diff),
        "wilcoxon_p": _wilcoxon_p(diff),
    }


def smallest_wilcoxon_p(repeats: int) -> float:
    """The smallest two-sided p-value the signed-rank test can give with this many pairs."""
    return 2.0 / 2**repeats if repeats > 0 else 1.0


def _paired_t_p(diff: np.ndarray) -> float:
    if len(diff) < 2 or np.allclose(diff, diff[0]):
        return np.nan
    return float(stats.ttest_1samp(diff, 0.0).pvalue)


def _wilcoxon_p(diff: np.ndarray) -> float:
    nonzero = diff[diff != 0]
    if smallest_wilcoxon_p(len(nonzero)) >= 0.05:
        return np.nan
    return float(stats.wilcoxon(nonzero).pvalue)


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
    columns = [c for c in LISTED if c in table]
    ordered = table[columns].sort_values(columns[:6], key=setup_order)
    print(ordered.to_string(index=False, float_format="%.3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
