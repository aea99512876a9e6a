"""A progress bar over the runs of a Hydra multirun, with an ETA and one line per finished run.

Hydra's basic launcher runs jobs one after another in this process, so a callback sees every
job end. Under other launchers jobs end in other processes; there the bar stays silent and the
launcher's own progress output is what a user sees.
"""

from __future__ import annotations

import math
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tqdm import tqdm


def count_jobs(sweeper_params: dict[str, str], task_overrides: list[str]) -> int:
    """Jobs in the sweep: the product of each swept key's value count (command line wins)."""
    declared = [f"{key}={value}" for key, value in (sweeper_params or {}).items()]
    by_key = {}
    for override in OverridesParser.create().parse_overrides(declared + list(task_overrides)):
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [1]
        by_key[override.get_key_element()] = len(values)
    return math.prod(by_key.values())


class SweepProgress(Callback):
    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __getstate__(self) -> dict:
        # Launchers that run jobs elsewhere pickle the callbacks; a live bar must stay here.
        return {"bar": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        total = count_jobs(
            dict(config.hydra.sweeper.get("params") or {}), config.hydra.overrides.task
        )
        self.bar = tqdm(total=total, desc=f"runs of {config.name}", unit="run", smoothing=0.1)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        overrides = " ".join(job_return.overrides or [])
        if job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value, dict):
            accuracy = job_return.return_value.get("test_accuracy", float("nan"))
            self.bar.write(f"done   {overrides}: test accuracy {accuracy:.4f}")
        else:
            self.bar.write(f"FAILED {overrides}: {job_return._return_value}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
