"""Collect finished runs (directories holding metrics.json) into one table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

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
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m embcompare.aggregate RUNS_DIR", file=sys.stderr)
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
