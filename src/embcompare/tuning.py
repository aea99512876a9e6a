"""`embcompare tune experiment=<name>`: tune every setup on dev, then run fresh seeds with its
defaults and with its tuned values, so a gap between setups can be read both ways.

    tune block of the experiment
      -> one Optuna study per setup and n (Hydra's Optuna sweeper, conf/hparams_search/)
           a trial = the tuning seeds trained with the proposed values, scored by their mean
           DEV accuracy (test accuracy is never read while tuning)
      -> results/<name>/tuned.yaml: each study's best values, the defaults, the budget, every trial
      -> fresh seeds, default arm and tuned arm (`tuned_by=<study>`), in results/<name>/runs/

Training runs of trials are cached by run key under results/<name>/tuning/runs/, so a
tune that is stopped and started again redoes nothing it finished.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
import yaml
from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from embcompare import run, validation
from embcompare.config import CONF_DIR, compose, register_resolvers, run_key
from embcompare.errors import EmbcompareError
from embcompare.io import write_json_atomic, write_text_atomic
from embcompare.training import progress

log = logging.getLogger("embcompare")

register_resolvers()

TRIAL_FILE = "trial.json"
TUNED_FILE = "tuned.yaml"


# ---------------------------------------------------------------- one trial (a Hydra job)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def trial(cfg: DictConfig) -> float:
    """Train each tuning seed with this trial's values; return their mean dev accuracy for
    Optuna to maximise. A trial whose run failed (say a learning rate that diverges) scores
    0.0, so the sampler avoids its region and the study goes on; tuned.yaml records it as
    failed and never picks it as best."""
    hydra_cfg = HydraConfig.get()
    record = {
        "trial": int(hydra_cfg.job.num),
        "params": {key: OmegaConf.select(cfg, key) for key in searched_keys(hydra_cfg.sweeper)},
        "dev_accuracy": {},
        "error": None,
    }
    try:
        for seed in cfg.tune.tuning_seeds:
            record["dev_accuracy"][str(seed)] = tuning_dev_accuracy(cfg, int(seed))
        record["mean_dev_accuracy"] = sum(record["dev_accuracy"].values()) / len(
            record["dev_accuracy"]
        )
    except Exception as error:  # a failed trial must not stop the study: Optuna records it
        record["error"] = run.describe_failure(error, Path(hydra_cfg.runtime.output_dir), cfg)
        record["mean_dev_accuracy"] = None
        log.error("trial %d failed: %s", record["trial"], record["error"])
    write_json_atomic(Path(hydra_cfg.runtime.output_dir) / TRIAL_FILE, record)
    return record["mean_dev_accuracy"] or 0.0


GRID_KEYS = ("setup", "train.n", "seed")


def searched_keys(sweeper: DictConfig) -> list[str]:
    """The keys a study searches: those of its hparams_search config, not the grid keys the
    experiment sweeps (setup, n, seed), which `tune` fixes for each study."""
    return sorted(key for key in sweeper.get("params") or {} if key not in GRID_KEYS)


def tuning_dev_accuracy(cfg: DictConfig, seed: int) -> float:
    """Dev accuracy of one tuning seed, trained once per distinct config (cached by run key
    under results/<name>/tuning/runs/); no semantic evaluation, which tuning never reads."""
    seeded = OmegaConf.merge(cfg, {"seed": seed, "semantic": {"enabled": False}})
    validation.check_config(seeded)
    out_dir = tuning_runs_dir(cfg) / run_key(_root_=seeded)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = out_dir / "metrics.json"
    with FileLock(out_dir / ".lock"):
        if not metrics_file.is_file():
            try:
                run.execute(seeded, out_dir)
            except Exception as error:
                run.record_failure(out_dir, error, run.describe_failure(error, out_dir, seeded))
                raise
    return float(json.loads(metrics_file.read_text())["dev_accuracy"])


def tuning_runs_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.results_dir) / cfg.name / "tuning" / "runs"


# ---------------------------------------------------------------- the `tune` command


@dataclass(frozen=True)
class Study:
    setup: str
    n: str
    search: str  # conf/hparams_search/<search>.yaml

    @property
    def name(self) -> str:
        return f"{self.setup}-n{self.n}"


def main(overrides: list[str]) -> int:
    cfg = compose("config", overrides, with_hydra=True)
    tune = _tune_block(cfg)
    validation.check_name("name", cfg.name)
    out_dir = Path(cfg.paths.results_dir) / cfg.name
    studies = [Study(setup, str(n), tune.search[setup]) for setup in tune.setups for n in tune.n]
    fixed = _fixed_grid_keys(cfg, tune)
    results = {}
    for number, study in enumerate(studies, 1):
        log.info("study %d of %d: %s (%s)", number, len(studies), study.name, study.search)
        results[study.name] = run_study(cfg, study, overrides, fixed, tune)
    tuned = tuned_document(cfg, tune, studies, results)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / TUNED_FILE, _yaml_text(tuned))
    print(f"wrote {out_dir / TUNED_FILE}", flush=True)
    failed = _fresh_runs(overrides, tune, tuned)
    return 1 if failed else 0


def _tune_block(cfg: DictConfig) -> DictConfig:
    """The experiment's `tune` block, checked: one line naming the key when it is unusable."""
    tune = cfg.get("tune")
    if tune is None:
        raise EmbcompareError(
            f"experiment {cfg.get('name')!r} has no `tune` block; tune an experiment that has "
            "one, e.g. experiment=learning_curve_tuned"
        )
    for key in ("setups", "n", "tuning_seeds", "seeds"):
        if not OmegaConf.is_list(tune.get(key)) or not tune[key]:
            raise EmbcompareError(f"tune.{key}={tune.get(key)!r} must be a non-empty list")
    if not validation.positive_int(tune.get("trials")):
        raise EmbcompareError(f"tune.trials={tune.get('trials')!r} must be a positive integer")
    for seed in [*tune.tuning_seeds, *tune.seeds]:
        if not validation.non_negative_int(seed):
            raise EmbcompareError(f"tune seeds must be non-negative integers, got {seed!r}")
    if set(tune.tuning_seeds) & set(tune.seeds):
        raise EmbcompareError(
            "tune.tuning_seeds and tune.seeds overlap: the fresh seeds must be new to tuning"
        )
    for n in tune.n:
        validation.check_train_n(n)
    for setup in tune.setups:
        search = (tune.get("search") or {}).get(setup)
        searches = CONF_DIR / "hparams_search"
        if search is None or not (searches / f"{search}.yaml").is_file():
            raise EmbcompareError(f"tune.search.{setup}={search!r}: no such config in {searches}")
    return tune


def _fixed_grid_keys(cfg: DictConfig, tune: DictConfig) -> list[str]:
    """The experiment's grid keys other than setup, n and seed cannot be tuned over at once."""
    grid = dict(cfg.hydra.sweeper.get("params") or {})
    others = sorted(set(grid) - set(GRID_KEYS))
    if others:
        raise EmbcompareError(
            f"experiment {cfg.name} also sweeps {', '.join(others)}; tune one value at a time "
            f"by adding {others[0]}=<value>"
        )
    return [f"seed={tune.tuning_seeds[0]}"]  # unused by a trial, but fixed so Optuna skips it


def run_study(cfg, study: Study, overrides, fixed, tune) -> list[dict]:
    """One Optuna study through Hydra; its trial records, in trial order."""
    study_dir = Path(cfg.paths.results_dir) / cfg.name / "tuning" / study.name
    shutil.rmtree(study_dir, ignore_errors=True)  # trial records of an earlier budget would mix
    arguments = [
        "-m",
        *overrides,
        f"setup={study.setup}",
        f"train.n={study.n}",
        *fixed,
        f"hparams_search={study.search}",
        f"hydra.sweeper.n_trials={tune.trials}",
    ]
    _run_hydra(trial, "tune", arguments)
    records = [
        json.loads(path.read_text()) for path in sorted(study_dir.glob(f"trial-*/{TRIAL_FILE}"))
    ]
    records.sort(key=lambda record: record["trial"])
    if all(record["error"] for record in records):
        first = records[0]["error"] if records else "no trial ran"
        raise EmbcompareError(
            f"study {study.name}: all {len(records)} trials failed; the first: {first}"
        )
    return records


def _run_hydra(task_function, command: str, arguments: list[str]) -> None:
    """Run a Hydra app in this process with `arguments` as its command line."""
    saved = sys.argv
    sys.argv = [f"{saved[0]} {command}", *arguments]
    try:
        task_function()
    finally:
        sys.argv = saved


def tuned_document(cfg: DictConfig, tune: DictConfig, studies: list[Study], results) -> dict:
    """tuned.yaml: what was searched, with what budget, what each study found, every trial."""
    spaces = {}
    document = {
        "experiment": str(cfg.name),
        "objective": (
            f"mean dev accuracy over tuning seeds {list(tune.tuning_seeds)}; test accuracy is "
            "never read while tuning"
        ),
        "budget": {
            "trials_per_study": int(tune.trials),
            "tuning_seeds": list(tune.tuning_seeds),
            "runs_per_study": int(tune.trials) * len(tune.tuning_seeds),
        },
        "studies": {},
    }
    for study in studies:
        records = results[study.name]
        if study.search not in spaces:
            spaces[study.search] = _space_of(study.search)
        finished = [r for r in records if not r["error"]]
        best = max(finished, key=lambda r: r["mean_dev_accuracy"])  # first of equals wins
        document["studies"][study.name] = {
            "setup": study.setup,
            "n": study.n,
            "search": study.search,
            "defaults": _defaults(study, best["params"]),
            "best": {
                "params": best["params"],
                "mean_dev_accuracy": best["mean_dev_accuracy"],
                "trial": best["trial"],
            },
            "failed_trials": len(records) - len(finished),
            "trials": records,
        }
    document["budget"]["sampler"] = spaces and next(iter(spaces.values()))["sampler"]
    document["search_spaces"] = {name: space["params"] for name, space in spaces.items()}
    return document


def _space_of(search: str) -> dict:
    cfg = compose("config", [f"hparams_search={search}"], with_hydra=True)
    sampler = OmegaConf.to_container(cfg.hydra.sweeper.sampler)
    params = {key: str(cfg.hydra.sweeper.params[key]) for key in searched_keys(cfg.hydra.sweeper)}
    return {"sampler": sampler, "params": params}


def _defaults(study: Study, params: dict) -> dict:
    """The configured value of each searched key for this setup (what the default arm uses)."""
    cfg = compose("config", [f"setup={study.setup}", f"train.n={study.n}"])
    return {key: OmegaConf.select(cfg, key) for key in params}


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases: each trial's values written out where they stand."""

    def ignore_aliases(self, data) -> bool:
        return True


def _yaml_text(document: dict) -> str:
    return yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, width=100)


def tuned_overrides(entry: dict, study_name: str) -> list[str]:
    """The command-line overrides that run a study's best values, labelled by the study."""
    values = [f"{key}={json.dumps(value)}" for key, value in entry["best"]["params"].items()]
    return [*values, f"tuned_by={study_name}"]


def _fresh_runs(overrides, tune, tuned: dict) -> bool:
    """The fresh seeds, as configured and as tuned; whether any run failed."""
    seeds = ",".join(str(s) for s in tune.seeds)
    common = ["-m", *overrides, f"seed={seeds}"]
    failed = False
    default_arm = [
        *common,
        f"setup={','.join(tune.setups)}",
        f"train.n={','.join(str(n) for n in tune.n)}",
    ]
    failed |= _sweep(default_arm)
    for name, entry in tuned["studies"].items():
        arm = [*common, f"setup={entry['setup']}", f"train.n={entry['n']}"]
        failed |= _sweep([*arm, *tuned_overrides(entry, name)])
    return failed


def _sweep(arguments: list[str]) -> bool:
    _run_hydra(run.main, "run", arguments)
    outcome = progress.CURRENT["outcome"]
    return outcome is not None and bool(outcome.failed)
