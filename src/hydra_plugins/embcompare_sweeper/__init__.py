"""Hydra's basic sweeper, with its check before launching made cheap (hydra/sweeper=checked_once).

Before it launches anything, Hydra's basic sweeper composes the full config of every job, to stop
a bad override early. Composing takes ~0.1 s, so the learning curve's 140 runs waited 15 s before
the first one started, and a 240-run grid 25 s. An override that cannot be composed fails
whichever job holds it, so composing one job per distinct override catches the same mistakes
(14 compositions for the learning curve); each job is still composed in full where it runs.
It lives in `hydra_plugins` because Hydra instantiates sweepers only from there.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class CheckedOnceSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        super().validate_batch_is_legal(jobs_covering_every_override(batch))


def jobs_covering_every_override(batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """The jobs, in order, that bring an override no earlier chosen job had."""
    seen: set[str] = set()
    chosen = []
    for overrides in batch:
        new = set(overrides) - seen
        if new:
            chosen.append(overrides)
            seen |= new
    return chosen
