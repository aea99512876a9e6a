"""A progress bar over the runs of a Hydra multirun, with an ETA and one line per finished run.

The bar counts run directories of this sweep that hold metrics.json or error.json, polled by a
thread of the process that started the sweep, so it advances under every launcher: Hydra's
basic launcher runs jobs in this process, joblib, submitit and Ray elsewhere. The per-run
lines ("done ...: test accuracy") come from the job-end callback, which only the basic
launcher calls in this process.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass
class SweepOutcome:
    """The runs of one sweep, found by their run directories, whatever launcher ran them."""

    finished: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    listing: Path | None = None

    def summary(self) -> str:
        where = f" (listed in {self.listing})" if self.failed else ""
        return f"{len(self.finished)} finished, {len(self.failed)} failed{where}"


# The sweep that this process started, for the command line's exit status and its message
# when interrupted (the callbacks run in this process under every launcher).
CURRENT: dict[str, Any] = {"sweep_dir": None, "started": None, "outcome": None}


def sweep_outcome(sweep_dir: Path, started: float) -> SweepOutcome:
    """Runs whose Hydra files were written since `started` belong to this sweep."""
    outcome = SweepOutcome()
    for overrides in sorted(Path(sweep_dir).glob("*/.hydra/overrides.yaml")):
        run_dir = overrides.parents[1]
        if overrides.stat().st_mtime < started:
            continue
        if (run_dir / "metrics.json").is_file():
            outcome.finished.append(run_dir)
        elif (run_dir / "error.json").is_file():
            outcome.failed[run_dir] = _error_message(run_dir / "error.json")
    return outcome


def _error_message(error_file: Path) -> str:
    try:
        return str(json.loads(error_file.read_text()).get("message", "")).strip()
    except (OSError, ValueError, AttributeError):
        return f"{error_file} is unreadable"


def reports_each_run() -> bool:
    """Whether this process shows a sweep's progress bar, which prints one line per finished
    run; a run alone, or one in a launcher's worker process, logs its own line instead."""
    return CURRENT["sweep_dir"] is not None


def ended_since_start(sweep_dir: Path, started: float) -> int:
    """Runs of this sweep that ended, finished or failed."""
    outcome = sweep_outcome(sweep_dir, started)
    return len(outcome.finished) + len(outcome.failed)


def finished_since_start() -> int | None:
    """Runs finished so far by the sweep in progress; None outside a sweep."""
    if CURRENT["sweep_dir"] is None:
        return None
    return len(sweep_outcome(CURRENT["sweep_dir"], CURRENT["started"]).finished)


class SweepProgress(Callback):
    POLL_SECONDS = 1.0

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.Lock()  # the poller and the job-end callback both move the bar

    def __getstate__(self) -> dict:
        # Launchers that run jobs elsewhere pickle the callbacks; a live bar must stay here.
        return {"bar": None, "_stop": None, "_poller": None, "_lock": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # a second earlier: file times may be coarser than the clock
        CURRENT.update(sweep_dir=Path(config.hydra.sweep.dir), started=time.time() - 1.0)
        CURRENT["outcome"] = None
        total = count_jobs(
            dict(config.hydra.sweeper.get("params") or {}), config.hydra.overrides.task
        )
        self.bar = tqdm(total=total, desc=f"runs of {config.name}", unit="run", smoothing=0.1)
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="sweep-progress", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            self._advance()

    def _advance(self) -> None:
        """Move the bar to the count of ended runs on disk (never backwards)."""
        bar, sweep_dir = self.bar, CURRENT["sweep_dir"]
        if bar is None or sweep_dir is None:
            return
        ended = min(ended_since_start(sweep_dir, CURRENT["started"]), bar.total)
        with self._lock:
            if ended > bar.n:
                bar.update(ended - bar.n)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.bar is None:
            return
        self._advance()
        overrides = " ".join(job_return.overrides or [])
        value = job_return._return_value
        if isinstance(value, dict) and "failed" in value:
            self.bar.write(f"FAILED {overrides}: {value['failed']}")
        elif job_return.status == JobStatus.COMPLETED and isinstance(value, dict):
            accuracy = job_return.return_value.get("test_accuracy", float("nan"))
            self.bar.write(f"done   {overrides}: test accuracy {accuracy:.4f}")
        else:
            self.bar.write(f"FAILED {overrides}: {job_return._return_value}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        if self.bar is not None:
            self._advance()
            self.bar.close()
        outcome = sweep_outcome(CURRENT["sweep_dir"], CURRENT["started"])
        if outcome.failed:
            outcome.listing = CURRENT["sweep_dir"] / "failed.txt"
            lines = [f"{run_dir.name}: {message}\n" for run_dir, message in outcome.failed.items()]
            outcome.listing.write_text("".join(lines))
        CURRENT.update(outcome=outcome, sweep_dir=None)
        print(outcome.summary(), flush=True)


class TrialProgress(Callback):
    """A bar over an Optuna study's trials (`embcompare tune`), one line per trial with its
    values and mean dev accuracy. A trial is several runs, so it is counted by its record
    (trial.json, written last) in the study's folder, polled like the run counter, so it
    advances under every launcher."""

    POLL_SECONDS = 1.0

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self._shown: set[Path] = set()
        self._study_dir: Path | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"bar": None, "_shown": set(), "_study_dir": None, "_stop": None, "_poller": None,
                "_lock": None}  # fmt: skip

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        study = config.hydra.sweeper.get("study_name") or config.name
        self._study_dir = Path(config.hydra.sweep.dir)
        self._shown = set()
        self.bar = tqdm(total=int(config.hydra.sweeper.n_trials), desc=study, unit="trial")
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="trial-progress", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            self._advance()

    def _advance(self) -> None:
        if self.bar is None or self._study_dir is None:
            return
        with self._lock:
            for record_file in sorted(self._study_dir.glob("trial-*/trial.json")):
                if record_file in self._shown:
                    continue
                self._shown.add(record_file)
                self.bar.update(1)
                self.bar.write(_trial_line(json.loads(record_file.read_text())))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        self._advance()
        if self.bar is not None:
            self.bar.close()


def _trial_line(record: dict) -> str:
    values = " ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                      for key, value in record["params"].items())  # fmt: skip
    if record.get("error"):
        return f"trial {record['trial']}: {values}: FAILED {record['error']}"
    return f"trial {record['trial']}: {values}: mean dev accuracy {record['mean_dev_accuracy']:.4f}"
