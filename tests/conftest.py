"""Shared fixtures. Real data comes from the mirror (DATA_MIRROR, else ../shared/data beside the
repository) through the project's own fetch code, into a per-session data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

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
