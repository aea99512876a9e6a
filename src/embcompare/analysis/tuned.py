"""Default vs tuned: how much of each gap between setups survives tuning every setup on dev.

Runs of a tuning experiment come in two arms: `default` (the config's own values) and `tuned`
(the best values of the setup's own study at that n, recorded as `cfg.tuned_by`). Within an
arm, setups are paired by seed (same training sample, same split); a gap is the paired mean
difference in test accuracy with its 95% t-interval.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from embcompare.analysis.aggregate import SETUP_ORDER, ordered_ns
from embcompare.analysis.verdicts import Check, Estimate, interval
from embcompare.errors import EmbcompareError

ARMS = ("default", "tuned")
COMPARISONS = (
    ("static", "rand"),
    ("nonstatic", "rand"),
    ("static", "rand_kim"),
    ("nonstatic", "rand_kim"),
)


def with_arms(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `arm`: 'tuned' for runs with a tuned_by study, else 'default'."""
    runs = runs.copy()
    study = runs["cfg.tuned_by"] if "cfg.tuned_by" in runs else pd.Series(None, index=runs.index)
    runs["arm"] = ["tuned" if _is_set(value) else "default" for value in study]
    return runs


def _is_set(value) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return json.loads(value) is not None if isinstance(value, str) else True


def _by_seed(runs: pd.DataFrame, arm: str, setup: str, n: str, metric: str) -> pd.Series:
    if "arm" not in runs:
        runs = with_arms(runs)
    rows = runs[(runs["arm"] == arm) & (runs["setup"] == setup) & (runs["n"].astype(str) == n)]
    if rows["seed"].duplicated().any():
        raise EmbcompareError(
            f"{arm} {setup} n={n}: two runs share a seed; a tuning experiment's arms must hold "
            "one run per setup, n and seed (were two tunings mixed in one runs folder?)"
        )
    return rows.set_index("seed")[metric].astype(float)


def paired_gap(
    runs: pd.DataFrame, arm: str, setup: str, baseline: str, n: str, metric="test_accuracy"
) -> Estimate:
    """setup minus baseline within one arm at one n, paired by seed."""
    other = _by_seed(runs, arm, setup, n, metric)
    base = _by_seed(runs, arm, baseline, n, metric)
    shared = other.index.intersection(base.index)
    return interval((other.loc[shared] - base.loc[shared]).to_numpy())


def tuning_effect(runs: pd.DataFrame, setup: str, n: str, metric="test_accuracy") -> Estimate:
    """Tuned minus default for one setup at one n, paired by seed."""
    tuned = _by_seed(runs, "tuned", setup, n, metric)
    default = _by_seed(runs, "default", setup, n, metric)
    shared = tuned.index.intersection(default.index)
    return interval((tuned.loc[shared] - default.loc[shared]).to_numpy())


def surviving_share(default: Estimate, tuned: Estimate) -> float:
    """Tuned gap over default gap, where the default gap is a gap at all (its CI excludes 0);
    NaN otherwise, since a share of a gap that may be zero means nothing."""
    if not default.has_interval or default.low <= 0 <= default.high:
        return float("nan")
    return tuned.mean / default.mean


def gap_table(runs: pd.DataFrame, comparisons=COMPARISONS) -> pd.DataFrame:
    """One row per n and comparison: the default and tuned gaps in points, the share that
    survives, and whether the tuned gap is above 0 (a Check: holds, does not hold or
    inconclusive)."""
    runs = with_arms(runs)
    rows = []
    for n in ordered_ns(runs):
        for setup, baseline in comparisons:
            if not _has(runs, setup, n) or not _has(runs, baseline, n):
                continue
            default = paired_gap(runs, "default", setup, baseline, n)
            tuned = paired_gap(runs, "tuned", setup, baseline, n)
            check = Check(f"{setup} - {baseline}, tuned, n={n}", tuned, scale=100, digits=1)
            rows.append(
                {
                    "n": n,
                    "comparison": f"{setup} - {baseline}",
                    "default gap": _points(default),
                    "tuned gap": _points(tuned),
                    "share surviving": surviving_share(default, tuned),
                    "tuned gap > 0": check.outcome,
                    "default_mean": default.mean,
                    "tuned_mean": tuned.mean,
                    "tuned_low": tuned.low,
                    "tuned_high": tuned.high,
                }
            )
    return pd.DataFrame(rows)


def effect_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Tuned minus default, per setup and n, in points."""
    runs = with_arms(runs)
    rows = [
        {"n": n, "setup": setup, "tuned - default": _points(tuning_effect(runs, setup, n))}
        for n, setup in _cells(runs)
        if _has(runs, setup, n)
    ]
    return pd.DataFrame(rows)


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy ± 95% CI per setup, n and arm."""
    runs = with_arms(runs)
    rows = []
    for n, setup in _cells(runs):
        row = {"n": n, "setup": setup}
        for arm in ARMS:
            values = runs[(runs["arm"] == arm) & (runs["setup"] == setup)]
            values = values[values["n"].astype(str) == n]["test_accuracy"]
            row[arm] = _accuracy(interval(values.to_numpy(dtype=float)))
        rows.append(row)
    return pd.DataFrame(rows)


def parameter_table(tuned: dict) -> pd.DataFrame:
    """Each study's best values beside the defaults, with its mean dev accuracy and budget."""
    rows = []
    budget = tuned["budget"]
    for name, study in tuned["studies"].items():
        best = study["best"]
        row = {"study": name, "best mean dev accuracy": f"{best['mean_dev_accuracy']:.4f}"}
        for key, value in best["params"].items():
            default = study["defaults"].get(key)
            row[_short(key)] = f"{_value(value)} (default {_value(default)})"
        row["budget"] = (
            f"{budget['trials_per_study']} trials x {len(budget['tuning_seeds'])} seeds"
            + (f", {study['failed_trials']} failed" if study.get("failed_trials") else "")
        )
        rows.append(row)
    return pd.DataFrame(rows).fillna("not searched")


def _short(key: str) -> str:
    return {
        "train.optimizer.learning_rate": "learning rate",
        "model.dropout": "dropout",
        "train.patience": "patience",
        "setup.channels.0.init_scale": "init scale a",
    }.get(key, key)


def _value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _points(estimate: Estimate) -> str:
    if not math.isfinite(estimate.mean):
        return "not measured"
    if not estimate.has_interval:
        return f"{100 * estimate.mean:+.1f} ({estimate.repeats} seeds, no CI)"
    return f"{100 * estimate.mean:+.1f} [{100 * estimate.low:+.1f}, {100 * estimate.high:+.1f}]"


def _accuracy(estimate: Estimate) -> str:
    if not math.isfinite(estimate.mean):
        return ""
    if not estimate.has_interval:
        return f"{estimate.mean:.3f} ({estimate.repeats} seeds)"
    return f"{estimate.mean:.3f} ± {estimate.high - estimate.mean:.3f}"


def _has(runs: pd.DataFrame, setup: str, n: str) -> bool:
    rows = runs[(runs["setup"] == setup) & (runs["n"].astype(str) == n)]
    return set(rows["arm"]) >= set(ARMS)


def _cells(runs: pd.DataFrame):
    """(n, setup) pairs in table order: n ascending ('all' last), setups in SETUP_ORDER."""
    for n in ordered_ns(runs):
        for setup in _ordered_setups(runs):
            yield n, setup


def _ordered_setups(runs: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(runs["setup"]))
    return sorted(present, key=lambda s: SETUP_ORDER.index(s) if s in SETUP_ORDER else 99)


def default_arm(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with the config's own values (for the sections that compare setups at equal
    settings)."""
    return runs[np.asarray(with_arms(runs)["arm"] == "default")]
