"""Where the configs live, the one way to compose them outside `@hydra.main`, and the resolvers
that configs interpolate (`${run_key:}`, `${evaluate_name:...}`).

The configs ship inside the package (`embcompare/conf`), so an installed CLI finds them too; the
repository's top-level `conf` is a link to this folder.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from embcompare.errors import EmbcompareError

CONF_DIR = Path(str(importlib.resources.files("embcompare") / "conf"))

# Settings that say where files live, what the report shows or where a run is logged
# (TensorBoard, MLflow), not what a run computes: they stay out of the run key and the config
# record, so changing them never redoes runs and runs that differ only in them group together.
_NOT_IN_RUN_KEY = (
    "hydra",
    "logger",
    "paths",
    "report_claims",
    "report_families",
    "report_paper",
    "threads",  # like another CPU: the pool size moves float sums in the last digits only
    "tune",  # how `embcompare tune` searches; a run's own values carry what it found
    "verbose",
)
# Settings added after runs existed, left out of the run key (and the config record) at their
# default, so older runs keep their keys; tables restore them (aggregate.DROPPED_DEFAULTS).
LEFT_OUT_AT_DEFAULT = {("embedding", "unseen"): "random"}
# Settings inside computed groups that only change what a run displays.
_DISPLAY_ONLY = (("train", "progress"),)


def keyed_config(cfg: DictConfig) -> dict:
    """The resolved config that decides what a run computes: the run key's content.

    `paths` values resolve to placeholders here, so a setting that points into the data dir
    (`${paths.cache_dir}/pretrained/...`) keys the same wherever the data lives; display-only
    settings are left out, and a vectors file named by path enters by its sha256 too.
    """
    kept = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in _NOT_IN_RUN_KEY])
    kept.paths = {name: f"<paths.{name}>" for name in cfg.get("paths", {})}
    resolved = OmegaConf.to_container(kept, resolve=True)
    resolved.pop("paths")
    for group, key in _DISPLAY_ONLY:
        resolved.get(group, {}).pop(key, None)
    if not resolved.get("similarity", {}).get("extra"):  # none: keys stay as before it existed
        resolved.get("similarity", {}).pop("extra", None)
    if resolved.get("tuned_by") is None:  # likewise for untuned runs
        resolved.pop("tuned_by", None)
    for group, key in LEFT_OUT_AT_DEFAULT:  # likewise for settings at these defaults
        if resolved.get(group, {}).get(key) == LEFT_OUT_AT_DEFAULT[group, key]:
            resolved[group].pop(key)
    stamps = _input_stamps(cfg)
    if stamps:
        resolved["input_sha256"] = stamps
    return resolved


def _input_stamps(root: DictConfig) -> dict[str, str]:
    """sha256 of each input file that the config names by path alone (a vectors file, a user's
    dataset file, extra similarity benchmarks), so overwriting it makes the next run compute
    again. The packaged dataset and benchmark configs pin each file's sha256 already."""
    from embcompare.stamps import content_stamp

    paths = {
        key: OmegaConf.select(root, key, default=None, throw_on_missing=False)
        for key in ("embedding.path", "dataset.path")
    }
    extra = OmegaConf.select(root, "similarity.extra", default=None)
    if OmegaConf.is_list(extra):
        paths.update({f"similarity.extra.{i}": path for i, path in enumerate(extra)})
    cache_dir = OmegaConf.select(root, "paths.cache_dir", default=None)
    return {
        key: content_stamp(Path(str(path)).expanduser(), cache_dir)
        for key, path in paths.items()
        if path and path != "???"
    }


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """A resolved config's leaves by dotted key (`train.optimizer.name`, list items by index:
    `setup.channels.0.init`), in the config's order; empty dicts and lists leave no key."""
    flat: dict[str, object] = {}

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{key}.{index}" if key else str(index))
        else:
            flat[key] = value

    walk(tree, prefix)
    return flat


def config_record(cfg: DictConfig) -> dict[str, str]:
    """The keyed config flattened to `cfg.<dotted key>` -> JSON text, one column per value, so
    aggregation can group runs by their whole config and name the values that differ."""
    return {key: json.dumps(value) for key, value in flatten(keyed_config(cfg), "cfg").items()}


def run_key(*, _root_: DictConfig) -> str:
    """A readable, content-addressed directory name: same resolved config, same directory."""
    resolved = keyed_config(_root_)
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:10]
    setup, dataset = resolved["setup"]["name"], resolved["dataset"]["name"]
    return f"{dataset}-{setup}-n{resolved['train']['n']}-s{resolved['seed']}-{digest}"


def evaluate_name(vectors) -> str:
    """Output-directory name for `vectors=`: the config name, or the file name less extension."""
    if vectors is None:
        return "unnamed"
    name = Path(str(vectors).rstrip("/")).name
    name = name if (CONF_DIR / "embedding" / f"{name}.yaml").is_file() else Path(name).stem
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "unnamed"


def file_dataset_name(*, _parent_) -> str:
    """dataset=file's name: its file's name less extension, made one safe path part."""
    path = OmegaConf.select(_parent_, "path", default=None, throw_on_missing=False)
    stem = Path(str(path)).stem if path and path != "???" else ""
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".-") or "file"


RESOLVERS = {
    "run_key": run_key,
    "evaluate_name": evaluate_name,
    "file_dataset_name": file_dataset_name,
}


def register_resolvers() -> None:
    """Make the RESOLVERS (`${run_key:}` ...) resolvable; safe to call more than once."""
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def compose(
    config_name: str, overrides: Sequence[str] = (), *, with_hydra: bool = False
) -> DictConfig:
    """The config `embcompare <command>` would see, composed in-process (with its `hydra` node
    when `with_hydra`); a bad override becomes one EmbcompareError line (Hydra appends its
    search path after the useful part)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(
                config_name=config_name,
                overrides=list(overrides),
                return_hydra_config=with_hydra,
            )
    except (HydraException, OmegaConfBaseException) as error:
        message = " ".join(str(error).split("Config search path")[0].split())
        raise EmbcompareError(f"bad {config_name} arguments {list(overrides)}: {message}") from None
