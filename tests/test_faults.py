"""Faults: a sweep killed part-way resumes without redoing or losing runs; runs are
deterministic; an unusable results directory is a clear error."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

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


# --- failures recorded, content keys, locks and signals (issue 15) ------------------------------


def smoke_paths(results, data_dir, mirror) -> list[str]:
    return [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", f"paths.results_dir={results}"]


@pytest.mark.slow
def test_a_sweep_with_a_failing_run_finishes_the_others_and_lists_it(tmp_path, data_dir, mirror):
    args = ["-m", "experiment=smoke", "setup=rand", "train.n=100", "train.batch_size=50,-1"]
    sweep = run_cli("run", *args, *smoke_paths(tmp_path, data_dir, mirror))
    assert sweep.returncode == 1
    assert "Traceback" not in sweep.stderr
    listing = tmp_path / "smoke" / "runs" / "failed.txt"
    assert f"1 finished, 1 failed (listed in {listing})" in sweep.stdout
    assert "train.batch_size=-1 must be a positive integer" in listing.read_text()
    assert len(list(tmp_path.glob("smoke/runs/*/metrics.json"))) == 1
    (error_file,) = tmp_path.glob("smoke/runs/*/error.json")
    assert not (error_file.parent / "metrics.json").exists()
    report = run_cli("report", "experiment=smoke", f"paths.results_dir={tmp_path}")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "train.batch_size=-1 must be" in (tmp_path / "smoke" / "report.md").read_text()


def write_glove_text(path, words, vectors) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for word, row in zip(words, vectors, strict=True):
            handle.write(word + " " + " ".join(f"{x:.5f}" for x in row) + "\n")


@pytest.mark.slow
def test_overwriting_a_vectors_file_makes_the_next_run_recompute(tmp_path, data_dir, mirror):
    from embcompare.run import CONF_DIR
    from embcompare.vectors.pretrained import load_pretrained

    glove = load_pretrained(
        OmegaConf.load(f"{CONF_DIR}/embedding/glove-6b-50d.yaml"), tmp_path / "unused"
    )
    words, vectors = glove.words[:20000], np.asarray(glove.vectors[:20000])
    vectors_file = tmp_path / "mine.txt"
    write_glove_text(vectors_file, words, vectors)
    args = [
        "run", "experiment=smoke", "setup=static", "train.n=100", "embedding=vectors-file",
        "embedding.format=glove_text", f"embedding.path={vectors_file}",
        f"paths.cache_dir={tmp_path / 'cache'}", *smoke_paths(tmp_path, data_dir, mirror),
    ]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli(*args, "train.progress=true")  # a display setting: same run
    assert "already finished, skipping" in again.stdout + again.stderr
    write_glove_text(vectors_file, words, -vectors)  # same path, other content
    changed = run_cli(*args)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "already finished, skipping" not in changed.stdout + changed.stderr
    assert len(list(tmp_path.glob("smoke/runs/*/metrics.json"))) == 2


@pytest.mark.slow
def test_two_concurrent_identical_sweeps_run_each_config_once(tmp_path, data_dir, mirror):
    command = [
        sys.executable, "-m", "embcompare.cli", "run", "-m", "experiment=smoke", "setup=rand",
        "train.n=100", "seed=1,2", *smoke_paths(tmp_path, data_dir, mirror),
    ]  # fmt: skip
    sweeps = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    # one "done" line per run of a sweep, computed or skipped
    computed = sum(
        output.count("done ") - output.count("already finished, skipping") for output in outputs
    )
    skipped = sum(output.count("already finished, skipping") for output in outputs)
    assert (computed, skipped) == (2, 2), outputs
    assert len(list(tmp_path.glob("smoke/runs/*/metrics.json"))) == 2


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_joblib_sweep_and_its_workers(tmp_path, data_dir, mirror, signum, status):
    sweep = subprocess.Popen(
        [
            sys.executable, "-m", "embcompare.cli", "run", "-m", "experiment=smoke",
            "setup=rand,static", "train.n=100", "seed=1,2,3", "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2", *smoke_paths(tmp_path, data_dir, mirror),
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        # a shell's background job starts with SIGINT ignored, which the sweep would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline, workers = time.monotonic() + 300, set()
    while len(workers) < 2 or not list(tmp_path.glob("smoke/runs/*/.hydra")):
        assert sweep.poll() is None and time.monotonic() < deadline, "sweep ended too early"
        workers = descendants(sweep.pid)
        time.sleep(0.2)
    sweep.send_signal(signum)  # to the parent only, as `kill` or a scheduler would
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == status, err[-3000:]
    assert "Traceback" not in err
    assert "runs finished, rerun the same command to continue" in err
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in workers if alive(pid)]
