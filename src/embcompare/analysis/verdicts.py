"""Three-valued verdicts from interval estimates.

A test compares the 95% CI of an estimate with a threshold: "holds" when the whole interval is
on the claimed side, "does not hold" when the whole interval is on the other side, and
"inconclusive" otherwise, including when there is no interval (one repeat, too few pairs).
A claim holds when all of its tests hold, does not hold when any of them does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from embcompare.analysis.aggregate import mean_ci

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = (
    "holds",
    "does not hold",
    "inconclusive",
    "not measured",
)


MIN_REPEATS = 3


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval over `repeats` units (seeds, folds, pairs, words)."""

    mean: float
    low: float
    high: float
    repeats: int
    unit: str = "seeds"

    @property
    def has_interval(self) -> bool:
        """Two repeats give a t-interval that two near-equal values make spuriously narrow;
        a verdict needs at least three."""
        finite = math.isfinite(self.low) and math.isfinite(self.high)
        return self.repeats >= MIN_REPEATS and finite

    def text(self, scale: float = 1.0, digits: int = 3) -> str:
        """'0.091 [0.076, 0.106] over 5 seeds', or '0.091 (1 seed, no CI)'."""
        if not math.isfinite(self.mean):
            return "not measured"
        mean = f"{scale * self.mean:.{digits}f}"
        if not self.has_interval:
            unit = self.unit.rstrip("s") if self.repeats == 1 else self.unit
            return f"{mean} ({self.repeats} {unit}, too few for a CI)"
        return (
            f"{mean} [{scale * self.low:.{digits}f}, {scale * self.high:.{digits}f}] "
            f"over {self.repeats} {self.unit}"
        )


def exact(value: float) -> Estimate:
    """A deterministic quantity: its interval is the value itself."""
    return Estimate(value, value, value, repeats=MIN_REPEATS, unit="computations")


@dataclass(frozen=True)
class Check:
    """`what` > threshold (or < with below=True), decided by the estimate's interval."""

    what: str
    estimate: Estimate
    threshold: float = 0.0
    below: bool = False
    scale: float = 1.0
    digits: int = 3

    @property
    def outcome(self) -> str:
        if not math.isfinite(self.estimate.mean):
            return NOT_MEASURED
        if not self.estimate.has_interval:
            return INCONCLUSIVE
        low, high = self.estimate.low, self.estimate.high
        above, under = low > self.threshold, high < self.threshold
        if self.below:
            above, under = under, above
        return HOLDS if above else FAILS if under else INCONCLUSIVE

    @property
    def rule(self) -> str:
        side = "below" if self.below else "above"
        return f"holds when its 95% CI lies {side} {self.scale * self.threshold:g}"

    def sentence(self) -> str:
        return (
            f"{self.what}: {self.estimate.text(self.scale, self.digits)} -> {self.outcome} "
            f"({self.rule})"
        )


@dataclass
class Verdict:
    claim: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        outcomes = [check.outcome for check in self.checks if check.outcome != NOT_MEASURED]
        if not outcomes:
            return NOT_MEASURED
        if FAILS in outcomes:
            return FAILS
        if all(outcome == HOLDS for outcome in outcomes):
            return HOLDS
        return INCONCLUSIVE

    @property
    def label(self) -> str:
        if self.outcome == INCONCLUSIVE:
            return "inconclusive, need more seeds"
        return self.outcome


def paired_estimate(row, unit: str = "seeds") -> Estimate:
    """The estimate of one row of `aggregate.paired_differences`."""
    return Estimate(
        row["mean_difference"], row["ci_low"], row["ci_high"], int(row["repeats"]), unit
    )


def interval(values, unit: str = "seeds") -> Estimate:
    """Mean and t-based 95% CI of finite values (a verdict needs MIN_REPEATS of them)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    mean, _, half = mean_ci(values)
    return Estimate(mean, mean - half, mean + half, len(values), unit)
