"""Faults: a sweep killed part-way resumes without redoing or losing runs; runs are
deterministic; an unusable results directory is a clear error."""

import errno
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import REPO, last_error_line, run_cli

pytestmark = pytest.mark.slow  # every test here runs the CLI in subprocesses

METRIC_COLUMNS = [
    "setup",
    "n",
    "seed",
    "test_accuracy",
    "test_macro_f1",
    "dev_accuracy",
    "epochs",
    "steps",
    "vocab_size",
]
SWEEP = ["-m", "experiment=smoke", "setup=rand,static", "train.n=100,200", "seed=1"]


def sweep_args(results, data_dir, mirror):
    return [
        *SWEEP,
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={results}",
    ]


def runs_table(results) -> pd.DataFrame:
    report = run_cli("report", "experiment=smoke", f"paths.results_dir={results}")
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(results / "smoke" / "runs.csv")
    return table[METRIC_COLUMNS].sort_values(["setup", "n"]).reset_index(drop=True)


def test_killed_sweep_resumes_and_matches_an_uninterrupted_one(tmp_path, data_dir, mirror):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(
        [sys.executable, "-m", "embcompare.cli", "run", *sweep_args(killed, data_dir, mirror)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(killed.glob("smoke/runs/*/metrics.json")):
        assert process.poll() is None and time.monotonic() < deadline, "sweep ended too early"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    survivors = {p: p.stat().st_mtime_ns for p in killed.glob("smoke/runs/*/metrics.json")}
    assert 1 <= len(survivors) < 4

    resumed = run_cli("run", *sweep_args(killed, data_dir, mirror))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert output.count("already finished, skipping") == len(survivors)
    assert {p: p.stat().st_mtime_ns for p in survivors} == survivors  # not redone
    assert len(list(killed.glob("smoke/runs/*/metrics.json"))) == 4

    uninterrupted = run_cli("run", *sweep_args(clean, data_dir, mirror))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    pd.testing.assert_frame_equal(runs_table(killed), runs_table(clean))


def test_same_config_and_seed_give_identical_metrics(tmp_path, data_dir, mirror):
    tables = []
    for name in ("first", "second"):
        results = tmp_path / name
        done = run_cli(
            "run",
            "-m",
            "experiment=smoke",
            "setup=nonstatic",
            "train.n=100",
            "seed=7",
            f"paths.data_dir={data_dir}",
            f"paths.mirror={mirror}",
            f"paths.results_dir={results}",
        )
        assert done.returncode == 0, done.stderr[-3000:]
        tables.append(runs_table(results))
    pd.testing.assert_frame_equal(*tables)


def test_unusable_results_directory_is_a_clear_error(tmp_path, data_dir, mirror):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the results directory should be\n")
    result = run_cli(
        "run",
        "experiment=smoke",
        "setup=rand",
        "train.n=100",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={blocker}",
    )
    assert result.returncode == 2
    assert "cannot write there" in last_error_line(result.stderr)
    assert "not_a_directory" in last_error_line(result.stderr)
    assert blocker.read_text().startswith("a file where")


@pytest.fixture
def small_disk(tmp_path):
    """A real 32 MiB file system (tmpfs) that the test can fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)]
    subprocess.run(mount, check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def fill_leaving(disk, free_bytes: int) -> None:
    """Fill the file system, then give back `free_bytes` of it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(bytes(2**16))
        except OSError as error:
            assert error.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - free_bytes))


def test_disk_full_is_a_clear_error_and_keeps_finished_runs(small_disk, data_dir, mirror):
    def run_seed(seed: int):
        return run_cli(
            "run", "experiment=smoke", "setup=static", "train.n=100", f"seed={seed}",
            f"paths.data_dir={data_dir}", f"paths.mirror={mirror}",
            f"paths.results_dir={small_disk}",
        )  # fmt: skip

    assert run_seed(1).returncode == 0
    (finished,) = small_disk.glob("smoke/runs/*/metrics.json")
    before = finished.read_bytes()

    fill_leaving(small_disk, 1_200_000)  # room for Hydra's files and the probe, not the run's
    result = run_seed(2)
    assert result.returncode == 2
    line = last_error_line(result.stderr)
    assert "No space left on device; free some space and run again" in line
    assert str(small_disk) in line
    assert finished.read_bytes() == before
    assert len(list(small_disk.glob("smoke/runs/*/metrics.json"))) == 1  # nothing half-done

    fill_leaving(small_disk, 0)  # full: stopped before Hydra writes anything
    result = run_seed(3)
    assert result.returncode == 2
    assert "cannot write there (No space left on device)" in last_error_line(result.stderr)

    (small_disk / "filler").unlink()
    assert run_seed(2).returncode == 0
    assert len(list(small_disk.glob("smoke/runs/*/metrics.json"))) == 2
    assert finished.read_bytes() == before
