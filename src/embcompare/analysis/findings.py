"""Findings in words: how a paired gap moves along the learning curve, not only its two ends."""

from __future__ import annotations

import numpy as np
import pandas as pd


def describe_curve(curve: pd.DataFrame, scale: float = 100.0, unit: str = "points") -> str:
    """One sentence on a gap's shape over n: both ends, where it peaks, from which n its CI
    includes 0 for good, and where it changes sign.

    `curve` has one row per n with n, n_train, mean_difference, ci_low and ci_high.
    """
    curve = curve.sort_values("n_train").reset_index(drop=True)
    means = curve["mean_difference"].to_numpy(dtype=float)
    first, last = curve.iloc[0], curve.iloc[-1]
    parts = [f"{_gap(first, scale)} at n={first['n']}"]
    if len(curve) == 1:
        if not _has_intervals(curve):
            return f"{_gap(first, scale)} {unit} at n={first['n']}; too few repeats for a CI."
        excludes = "includes" if _includes_zero(first) else "excludes"
        return f"{_gap(first, scale)} {unit} at n={first['n']}; its 95% CI {excludes} 0."
    positive = np.nanmean(means) >= 0
    peak = int(np.nanargmax(means) if positive else np.nanargmin(means))
    if 0 < peak < len(curve) - 1:
        peak_row = curve.iloc[peak]
        parts.append(f"rising to a peak of {_gap(peak_row, scale)} at n={peak_row['n']}")
        parts.append(
            f"then {_trend(means[peak], means[-1], positive)} {_gap(last, scale)} at n={last['n']}"
        )
    elif peak == 0:
        parts.append(
            f"largest at the smallest n, {_trend(means[0], means[-1], positive)} "
            f"{_gap(last, scale)} at n={last['n']}"
        )
    else:
        parts.append(f"growing to its largest, {_gap(last, scale)}, at n={last['n']}")
    if not _has_intervals(curve):
        return ", ".join(parts) + f" ({unit}; too few repeats for CIs)" + _sign_clause(curve)
    return (
        ", ".join(parts)
        + f" ({unit}, 95% CI over repeats)"
        + _zero_clause(curve)
        + _sign_clause(curve)
    )


def _has_intervals(curve: pd.DataFrame) -> bool:
    bounds = curve[["ci_low", "ci_high"]].to_numpy(dtype=float)
    return bool(np.isfinite(bounds).all(axis=1).any())


def _gap(row, scale: float) -> str:
    text = f"{scale * row['mean_difference']:+.1f}"
    if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
        return f"{text} [{scale * row['ci_low']:+.1f}, {scale * row['ci_high']:+.1f}]"
    return f"{text} (no CI)"


def _trend(start: float, end: float, positive: bool) -> str:
    shrinking = end < start if positive else end > start
    return "falling to" if shrinking else "staying near"


def _includes_zero(row) -> bool:
    return not (row["ci_low"] > 0 or row["ci_high"] < 0)


def _zero_clause(curve: pd.DataFrame) -> str:
    """From which n on every CI includes 0 (the gap is no longer distinguishable from none)."""
    inside = [_includes_zero(row) for _, row in curve.iterrows()]
    if not any(inside):
        return "; its CI excludes 0 at every n"
    if all(inside):
        return "; its CI includes 0 at every n"
    start = len(inside)
    while start > 0 and inside[start - 1]:
        start -= 1
    if start == len(inside):
        where = ", ".join(str(curve.iloc[i]["n"]) for i, flag in enumerate(inside) if flag)
        return f"; its CI includes 0 at n={where} only"
    return f"; its CI includes 0 from n={curve.iloc[start]['n']} on"


def _sign_clause(curve: pd.DataFrame) -> str:
    signs = np.sign(curve["mean_difference"].to_numpy(dtype=float))
    changes = [str(curve.iloc[i]["n"]) for i in range(1, len(signs)) if signs[i] * signs[i - 1] < 0]
    if not changes:
        return "; it never changes sign."
    return f"; it changes sign at n={', '.join(changes)}."
