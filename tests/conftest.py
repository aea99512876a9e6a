"""Shared fixtures. Real data comes from the mirror (DATA_MIRROR, else ../shared/data beside the
repository) through the project's own fetch code, into a per-session data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import absl.logging
import pytest
from omegaconf import OmegaConf

# TensorFlow imports absl, whose log handler keeps the sys.stderr of that moment (pytest's
# capture) and closes it when Hydra's logging setup shuts every handler down, unless it is
# sys.stderr then; a test that runs the CLI in-process under redirect_stderr would close
# pytest's capture ("I/O operation on closed file"). The real stderr is never closed.
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def mirror_path() -> Path:
    return Path(os.environ.get("DATA_MIRROR") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = mirror_path()
    if not (path / "MANIFEST.md").is_file():
        pytest.fail(f"no data mirror at {path}: set DATA_MIRROR to a copy of the shared data")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, mirror) -> Path:
    """A data directory that tests fill through ensure_file, as a run does."""
    return tmp_path_factory.mktemp("data")


# A run small enough for the fast tier: 60 examples, one epoch of the bag-of-embeddings model.
TINY_RUN = [
    "train.n=60",
    "train.epochs=1",
    "train.min_steps=0",
    "model=bow",
    "train.progress=false",
]


@pytest.fixture
def cfg_run(tmp_path, data_dir, mirror):
    """Compose `embcompare run`'s config in-process, tiny, with this test's data and results
    dirs (as lightning-hydra-template's cfg_train does); later overrides win."""
    from embcompare.config import compose

    def compose_run(*overrides: str):
        paths = [
            f"paths.data_dir={data_dir}",
            f"paths.mirror={mirror}",
            f"paths.results_dir={tmp_path / 'results'}",
        ]
        return compose("config", [*TINY_RUN, *paths, *overrides])

    return compose_run


def load_conf(group: str, name: str):
    return OmegaConf.load(CONF / group / f"{name}.yaml")


def run_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run `python -m embcompare.cli ...` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "embcompare.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def last_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("embcompare: error:")]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr[-3000:]}"
    return lines[0]


def pretrain_settings(**changes):
    """Settings of a tiny `embcompare pretrain` run (16-d Keras skip-gram on a synthetic corpus);
    each test changes what it is about."""
    from embcompare.vectors.pretraining.settings import Settings

    base = dict(
        method="keras_sgns",
        corpus="synthetic",
        sg=1,
        dim=16,
        window=2,
        negative=3,
        min_count=1,
        epochs=1,
        sample=0.0,
        learning_rate=0.025,
        min_learning_rate=1e-4,
        batch_size=64,
        seed=0,
        max_tokens=None,
    )
    return Settings(**{**base, **changes})
