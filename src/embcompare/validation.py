"""Checks of a run's config before anything is computed, and of its training sample before
training: a bad value stops the run with one line naming the key and the allowed range, so a
run that could only produce a meaningless result (0 steps, one class, a vocabulary of 2) is
never recorded as finished."""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf

from embcompare.errors import EmbcompareError
from embcompare.vectors.pretrained import UNSEEN_POLICIES

# A results directory name: one path part, no separators, no leading dot (no '..', no hidden).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def positive_int(value) -> bool:
    return _is_int(value) and value > 0


def non_negative_int(value) -> bool:
    return _is_int(value) and value >= 0


def positive_number(value) -> bool:
    return _is_number(value) and value > 0


def fraction(value) -> bool:
    """Strictly between 0 and 1: a share of examples held out."""
    return _is_number(value) and 0 < value < 1


def dropout_rate(value) -> bool:
    return _is_number(value) and 0 <= value < 1


# key -> (test, allowed range as the error states it). A key that a config lacks is not checked:
# bow has no filters, cnn no hidden layer.
RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "seed": (non_negative_int, "a non-negative integer"),
    "threads": (positive_int, "a positive integer"),
    "train.batch_size": (positive_int, "a positive integer"),
    "train.epochs": (positive_int, "a positive integer"),
    "train.patience": (non_negative_int, "a non-negative integer"),
    "train.min_steps": (non_negative_int, "a non-negative integer"),
    "train.eval_every_steps": (positive_int, "a positive integer"),
    "train.bucket_batches": (non_negative_int, "a non-negative integer"),
    "train.optimizer.learning_rate": (positive_number, "a number > 0"),
    "dataset.max_length": (positive_int, "a positive integer (tokens kept per text)"),
    "dataset.split.test_fraction": (fraction, "a number in (0, 1)"),
    "dataset.split.dev_fraction": (fraction, "a number in (0, 1)"),
    "dataset.split.folds": (lambda v: _is_int(v) and v >= 2, "an integer >= 2"),
    "dataset.split.fold": (non_negative_int, "an integer in [0, dataset.split.folds)"),
    "dataset.split.seed": (non_negative_int, "a non-negative integer"),
    "model.filters": (positive_int, "a positive integer"),
    "model.hidden": (positive_int, "a positive integer"),
    "model.dropout": (dropout_rate, "a number in [0, 1)"),
    "model.max_norm": (lambda v: v is None or positive_number(v), "a number > 0 or null"),
    "embedding.dim": (lambda v: v is None or positive_int(v), "a positive integer or null"),
    "embedding.unseen": (lambda v: v in UNSEEN_POLICIES, f"one of {list(UNSEEN_POLICIES)}"),
    "vocab.min_count": (positive_int, "a positive integer"),
}


# `+key=value` may add settings only where the code passes every key on: optimizer arguments.
# Anywhere else nothing reads an added key, and it would only give an identical run a new key.
ADDABLE_PREFIXES = ("train.optimizer.", "hydra.")


def check_added_keys(task_overrides) -> None:
    for override in task_overrides:
        if override.startswith("+") and not override.startswith("++"):
            key = override[1:].split("=", 1)[0]
            if not key.startswith(ADDABLE_PREFIXES):
                raise EmbcompareError(
                    f"{override}: no setting {key!r} is read by embcompare, so adding it would "
                    "only rerun the same computation under a new run key; remove it (only "
                    f"{', '.join(p + '*' for p in ADDABLE_PREFIXES)} may be added)"
                )


def check_config(cfg: DictConfig, task_overrides=()) -> None:
    """Raise EmbcompareError for the first config value outside its allowed range."""
    check_added_keys(task_overrides)
    for key, (is_allowed, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is not _MISSING and not is_allowed(value):
            raise EmbcompareError(f"{key}={value!r} must be {allowed}")
    check_train_n(cfg.train.n)
    windows = OmegaConf.select(cfg, "model.windows", default=None)
    if windows is not None and (not list(windows) or not all(positive_int(w) for w in windows)):
        raise EmbcompareError(
            f"model.windows={list(windows)!r} must be a non-empty list of positive integers"
        )
    check_name("name", cfg.name)
    check_logger(OmegaConf.select(cfg, "logger.name", default="none"))
    split = cfg.dataset.get("split", {})
    if split.get("policy") == "kfold" and not split.fold < split.folds:
        raise EmbcompareError(
            f"dataset.split.fold={split.fold} must be in [0, {split.folds}) (dataset.split.folds)"
        )


_MISSING = object()


def check_train_n(n) -> None:
    if n != "all" and not positive_int(n):
        raise EmbcompareError(f"train.n={n!r} must be a positive integer or 'all'")


def check_name(key: str, value) -> None:
    """A name that becomes a directory under the results dir must stay one safe path part."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise EmbcompareError(
            f"{key}={value!r} must be one path part of letters, digits, '.', '_' or '-' "
            "(no '/', no leading '.' or '-', at most 100 characters)"
        )


def check_logger(name: str) -> None:
    """`logger.name` is a logger of embcompare.reporting.loggers and what it imports is there."""
    from embcompare.reporting.loggers import LOGGERS

    if name not in LOGGERS:
        raise EmbcompareError(f"logger.name={name!r} must be one of {', '.join(LOGGERS)}")
    check_logger_installed(name)


def check_logger_installed(name: str) -> None:
    """A logger whose optional package is missing stops the run before it starts, rather than
    dropping out after training; names of no logger are left to Hydra's own check."""
    from embcompare.reporting.loggers import LOGGERS

    chosen = LOGGERS.get(name)
    missing = [module for module in chosen.needs if not _importable(module)] if chosen else []
    if missing:
        raise EmbcompareError(
            f"logger={name} needs {missing[0]}: pip install -e '.[{chosen.extra}]'"
        )


def _importable(module: str) -> bool:
    """Installed, found without importing it (mlflow takes a second or more to import)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: in sys.modules without a spec
        return False


def check_classes(labels: np.ndarray, label_names, what: str, key: str, needed: int = 1) -> None:
    """At least 2 classes, each with at least `needed` examples, among `labels`."""
    present, counts = np.unique(labels, return_counts=True)
    if len(present) < 2:
        only = [label_names[i] for i in present] or "none"
        raise EmbcompareError(
            f"{key}: the {what} has {len(labels)} example(s) of class(es) {only}; a classifier "
            "needs at least 2 classes"
        )
    if counts.min() < needed:
        rare = label_names[present[counts.argmin()]]
        raise EmbcompareError(
            f"{key}: class {rare!r} has {counts.min()} example(s) in the {what}, fewer than the "
            f"{needed} the split needs"
        )
