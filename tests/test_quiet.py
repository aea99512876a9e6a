"""A quiet command line: no TensorFlow start-up lines unless verbose=true, one line per run."""

from __future__ import annotations

import re

import pytest

from embcompare.errors import EmbcompareError
from embcompare.quiet import is_startup_noise, parse_verbose

from conftest import run_cli

# Seen on stderr of `embcompare run` on a machine without a GPU (TensorFlow 2.20)
STARTUP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795937698.902291   24231 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1795937698.902672   24231 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1795937699.256273   24231 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1795937705.000492   24231 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT_LINES = [
    "embcompare: error: train.n=0 must be a positive integer or 'all'",
    "E0000 00:00:1795937705.000492   24231 bfc_allocator.cc:52] Allocator ran out of memory",
    "Traceback (most recent call last):",
    "runs of smoke:  50%|█████     | 2/4 [00:10<00:10, 5.00s/run]",
]
BANNER = re.compile(r"^[IWE]\d{4} |oneDNN|cuInit|cpu_feature_guard|absl::InitializeLog", re.M)


def test_startup_notices_are_noise_and_real_problems_are_not():
    assert all(is_startup_noise(line.encode() + b"\n") for line in STARTUP_LINES)
    assert not any(is_startup_noise(line.encode() + b"\n") for line in KEPT_LINES)


def test_verbose_takes_the_last_true_or_false_and_names_a_bad_value():
    assert parse_verbose(["dataset=mr"]) is False
    assert parse_verbose(["verbose=true"]) is True
    assert parse_verbose(["verbose=True", "verbose=false"]) is False
    with pytest.raises(EmbcompareError, match=r"^verbose='yes' must be true or false$"):
        parse_verbose(["verbose=yes"])


def tiny_run(tmp_path, data_dir, mirror, *extra: str):
    return run_cli(
        "run", "dataset=sst2", "model=bow", "train.n=60", "train.epochs=1", "train.min_steps=0",
        "train.progress=false", "semantic.enabled=false", f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}", f"paths.results_dir={tmp_path}", *extra,
    )  # fmt: skip


@pytest.mark.slow
def test_a_cli_run_prints_no_tensorflow_banner_unless_verbose(tmp_path, data_dir, mirror):
    quiet = tiny_run(tmp_path, data_dir, mirror, "seed=1")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not BANNER.search(quiet.stderr), quiet.stderr
    assert (quiet.stdout + quiet.stderr).count("test accuracy") == 1

    verbose = tiny_run(tmp_path, data_dir, mirror, "seed=2", "verbose=true")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert BANNER.search(verbose.stderr), verbose.stderr
    assert len(list(tmp_path.rglob("metrics.json"))) == 2


def test_verbose_stays_out_of_the_run_key():
    from embcompare.config import compose, run_key

    keys = {run_key(_root_=compose("config", [f"verbose={value}"])) for value in (True, False)}
    assert len(keys) == 1


@pytest.mark.slow
def test_a_sweep_prints_one_line_per_finished_run(tmp_path, data_dir, mirror):
    sweep = tiny_run(tmp_path, data_dir, mirror, "-m", "seed=1,2")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    output = sweep.stdout + sweep.stderr
    assert output.count("test accuracy") == 2, output
    assert not BANNER.search(sweep.stderr), sweep.stderr
