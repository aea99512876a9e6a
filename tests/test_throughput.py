"""Throughput: parallel sweeps with the same metrics, a progress bar under every launcher, one
thread count for every run, and the fused row-sparse optimizer updates."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from embcompare.training import optimizers
from hydra_plugins.embcompare_sweeper import jobs_covering_every_override

from conftest import run_cli


def test_a_run_sets_tensorflow_and_blas_to_its_thread_count():
    """In a fresh process, as in a sweep's worker; TensorFlow's pool cannot change later."""
    shown = (
        "import tensorflow as tf; from threadpoolctl import threadpool_info; "
        "from embcompare.run import use_threads; use_threads(1); "
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads(), "
        "sorted({pool['num_threads'] for pool in threadpool_info()}))"
    )
    done = subprocess.run([sys.executable, "-c", shown], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "1 1 [1]"


@pytest.mark.parametrize("threads", ["0", "-2", "two"])
def test_bench_refuses_a_thread_count_that_is_not_positive(threads):
    bench = Path(__file__).parents[1] / "benchmarks" / "bench.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--threads", threads], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert f"--threads: {threads!r} is not a positive integer" in done.stderr.splitlines()[-1]


def metrics_by_run(results: Path) -> dict[str, dict]:
    """Each run's metrics without its timings, and its trained embedding."""
    runs = {}
    for path in results.glob("smoke/runs/*/metrics.json"):
        metrics = json.loads(path.read_text())
        runs[path.parent.name] = {k: v for k, v in metrics.items() if "second" not in k}
        runs[path.parent.name]["vectors"] = np.load(path.parent / "embedding.npz")["vectors"]
    return runs


@pytest.mark.slow
def test_smoke_sweep_gives_the_same_metrics_with_one_and_two_workers(tmp_path, data_dir, mirror):
    """Bag of embeddings and Kim's CNN, whose trained rows would differ in the 9th digit if a
    worker's TF thread pool had another size than a serial run's."""
    sweep = ["run", "-m", "experiment=smoke", "model=bow,cnn", "train.n=100"]
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}"]
    one = run_cli(*sweep, *paths, f"paths.results_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    two = run_cli(*sweep, *paths, f"paths.results_dir={tmp_path / 'two'}", *parallel)
    assert two.returncode == 0, two.stderr[-3000:]
    serial, parallel = metrics_by_run(tmp_path / "one"), metrics_by_run(tmp_path / "two")
    assert len(serial) == 4 and serial.keys() == parallel.keys()
    for run in serial:
        np.testing.assert_array_equal(serial[run].pop("vectors"), parallel[run].pop("vectors"))
        assert serial[run] == parallel[run]
    # the bar is counted from the run directories, so it reaches the end in the parent too
    assert "runs of smoke: 100%" in two.stderr and "4/4" in two.stderr


# --- the fused row-sparse updates ----------------------------------------------------------

ROWS, DIM, UNTOUCHED = 300, 16, 20


def separate_ops_adadelta(variable, accumulators, grad, learning_rate, rho, epsilon):
    """SparseAdadelta's update before the fused kernel: Keras's formulas on gathered rows."""
    rows, grad = optimizers.touched_rows(grad)
    grad_var, delta_var = accumulators
    accumulated_grad = rho * tf.gather(grad_var, rows) + (1 - rho) * tf.square(grad)
    accumulated_delta = tf.gather(delta_var, rows)
    delta = -(tf.sqrt(accumulated_delta + epsilon) * grad) / tf.sqrt(accumulated_grad + epsilon)
    accumulated_delta = rho * accumulated_delta + (1 - rho) * tf.square(delta)
    grad_var.scatter_update(tf.IndexedSlices(accumulated_grad, rows))
    delta_var.scatter_update(tf.IndexedSlices(accumulated_delta, rows))
    variable.scatter_add(tf.IndexedSlices(learning_rate * delta, rows))


def zipf_batches(steps, tokens=400, seed=0):
    """Token-row gradients with Zipf-like repeats, as an embedding lookup produces them; the
    last UNTOUCHED rows are never looked up."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, ROWS - UNTOUCHED + 1)
    return [
        tf.IndexedSlices(
            tf.constant(rng.normal(size=(tokens, DIM)).astype(np.float32)),
            tf.constant(
                rng.choice(ROWS - UNTOUCHED, size=tokens, p=(1 / ranks) / (1 / ranks).sum())
            ),
            tf.constant([ROWS, DIM]),
        )
        for _ in range(steps)
    ]


def test_fused_adadelta_kernel_matches_the_separate_op_update():
    settings = {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6}
    init = np.random.default_rng(1).normal(size=(ROWS, DIM)).astype(np.float32)
    batches = zipf_batches(steps=30)
    fused, optimizer = keras.Variable(init), optimizers.SparseAdadelta(**settings)
    reference = tf.Variable(init)
    accumulators = [tf.Variable(np.zeros_like(init)) for _ in range(2)]
    for grad in batches:
        optimizer.apply([grad], [fused])
        separate_ops_adadelta(reference, accumulators, grad, **settings)
    moved = np.abs(np.asarray(reference) - init)
    assert moved.max() > 0.01  # the rows did move, so the comparison means something
    np.testing.assert_allclose(np.asarray(fused), reference.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(fused)[-UNTOUCHED:], init[-UNTOUCHED:])


def test_the_sweep_checks_one_job_per_distinct_override_before_launching():
    grid = [
        (f"train.n={n}", f"setup={setup}", f"seed={seed}")
        for n in ("all", 2000, 1000, 500, 200, 100, 50)
        for setup in ("rand", "rand_kim", "static", "nonstatic")
        for seed in range(1, 6)
    ]
    checked = jobs_covering_every_override(grid)
    assert checked[0] == grid[0]
    assert len(checked) == 1 + 6 + 3 + 4  # the first job, then one per further value
    assert {o for job in checked for o in job} == {o for job in grid for o in job}


def test_a_bad_value_late_in_a_sweep_stops_it_before_any_run(tmp_path, data_dir, mirror):
    results = tmp_path / "results"
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", f"paths.results_dir={results}"]
    done = run_cli("run", "-m", "experiment=smoke", "seed=1,2", "setup=rand,nosuchsetup", *paths)
    assert done.returncode == 1
    assert "Could not find 'setup/nosuchsetup'" in done.stderr
    assert not list(results.rglob("metrics.json"))
    sweep = (results / "smoke" / "runs" / "multirun.yaml").read_text()
    assert "_target_: hydra_plugins.embcompare_sweeper.CheckedOnceSweeper" in sweep


def test_run_keeps_a_sweeper_that_the_command_line_or_its_experiment_chooses(
    tmp_path, monkeypatch
):
    from embcompare import cli, config

    assert not cli._picks_a_sweeper(["-m", "experiment=learning_curve", "seed=1,2"])
    assert cli._picks_a_sweeper(["-m", "hydra/sweeper=optuna"])
    assert cli._picks_a_sweeper(["-m", "+hparams_search=training"])
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: optuna\n"
    )
    monkeypatch.setattr(config, "CONF_DIR", tmp_path)
    assert cli._picks_a_sweeper(["-m", "experiment=mine"])
    assert not cli._picks_a_sweeper(["-m", "experiment=absent"])
