"""Throughput: parallel sweeps with the same metrics, a progress bar under every launcher, TF
threads shared out between workers, and the fused row-sparse optimizer updates."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from embcompare.run import threads_per_run

from conftest import run_cli


def launcher(**settings):
    return OmegaConf.create(settings)


@pytest.mark.parametrize(
    ("settings", "cores", "threads"),
    [
        ({"n_jobs": 2}, 2, 1),
        ({"n_jobs": 2}, 16, 8),
        ({"n_jobs": -1}, 4, 1),  # joblib's "one worker per core"
        ({"n_jobs": None}, 4, 1),
        ({"n_jobs": 8}, 2, 1),  # more workers than cores: never fewer than one thread
        ({"ray": {"remote": {"num_cpus": 3}}}, 16, 3),
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 2, None),
    ],
)
def test_threads_per_run_shares_the_cores_out_between_workers(settings, cores, threads):
    assert threads_per_run(launcher(**settings), cores) == threads


def metrics_by_run(results: Path) -> dict[str, dict]:
    """Each run's metrics without its timings, which differ from run to run."""
    return {
        path.parent.name: {
            k: v for k, v in json.loads(path.read_text()).items() if "second" not in k
        }
        for path in results.glob("smoke/runs/*/metrics.json")
    }


@pytest.mark.slow
def test_smoke_sweep_gives_the_same_metrics_with_one_and_two_workers(tmp_path, data_dir, mirror):
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}"]
    one = run_cli("run", "-m", "experiment=smoke", *paths, f"paths.results_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_cli(
        "run",
        "-m",
        "experiment=smoke",
        *paths,
        f"paths.results_dir={tmp_path / 'two'}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert two.returncode == 0, two.stderr[-3000:]
    serial, parallel = metrics_by_run(tmp_path / "one"), metrics_by_run(tmp_path / "two")
    assert len(serial) == 4 and serial == parallel
    # the bar is counted from the run directories, so it reaches the end in the parent too
    assert "runs of smoke: 100%" in two.stderr and "4/4" in two.stderr
