"""Throughput: parallel sweeps with the same metrics, a progress bar under every launcher, TF
threads shared out between workers, and the fused row-sparse optimizer updates."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from embcompare.run import threads_per_run
from embcompare.training import optimizers

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
