"""A non-editable `pip install .` finds its configs: they ship inside the package."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # a venv, a pip install and a run in subprocesses


def scratch_venv(where: Path) -> Path:
    """A fresh venv that sees this interpreter's packages (TensorFlow and the rest) behind its
    own, so that `pip install --no-deps` is enough and nothing big is downloaded again."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    own_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # a plain path in a .pth: the editable install's own .pth over there is not processed
    Path(own_site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def source_copy(where: Path) -> Path:
    """What `pip install .` needs, copied: building in the checkout would leave build/ there."""
    where.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, where / name)
    shutil.copytree(REPO / "src", where / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def test_pip_install_runs_the_smoke_experiment_from_another_directory(tmp_path, data_dir, mirror):
    python = scratch_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the install, not src/
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", source_copy(tmp_path / "src")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import embcompare.config as c; print(c.CONF_DIR)"],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv")
    assert (Path(where) / "experiment" / "smoke.yaml").is_file()

    embcompare = [str(tmp_path / "venv" / "bin" / "embcompare")]
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", "paths.results_dir=out"]
    for command in (
        ["run", "experiment=smoke", "train.n=100", *paths],
        ["report", "experiment=smoke", *paths],
    ):
        done = subprocess.run(
            embcompare + command, cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((elsewhere / "out" / "smoke" / "runs").glob("*/metrics.json"))) == 1
    assert (elsewhere / "out" / "smoke" / "report.md").is_file()
