"""Sweeps through the real Hydra CLI: the smoke experiment, restart safety, launchers, report."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from conftest import last_error_line, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, data_dir, mirror):
    """One smoke multirun shared by the tests below, plus its report."""
    results = tmp_path_factory.mktemp("results")
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", f"paths.results_dir={results}"]
    sweep = run_cli("run", "experiment=smoke", "-m", *paths)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = run_cli("report", "experiment=smoke", *paths)
    assert report.returncode == 0, report.stderr[-3000:]
    return results / "smoke", paths, sweep


@pytest.mark.slow
def test_smoke_multirun_writes_one_row_per_run(smoke):
    out, _, sweep = smoke
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4
    assert sorted(zip(runs["setup"], runs["n"], strict=True)) == [
        ("rand", 100),
        ("rand", 200),
        ("static", 100),
        ("static", 200),
    ]
    assert runs["test_accuracy"].between(0, 1).all()
    assert pd.read_parquet(out / "runs.parquet").shape[0] == 4
    summary = pd.read_csv(out / "summary.csv")
    assert {"test_accuracy", "test_accuracy_ci95", "repeats"} <= set(summary.columns)
    assert "runs of smoke: 100%" in sweep.stderr


@pytest.mark.slow
def test_figures_are_valid_non_empty_pngs(smoke):
    out, _, _ = smoke
    figures = sorted((out / "figures").glob("*.png"))
    assert {f.name for f in figures} >= {"accuracy_vs_n_sst2_bow.png", "gap_vs_n_sst2_bow.png"}
    for figure in figures:
        assert figure.read_bytes()[:8] == PNG_MAGIC
        pixels = plt.imread(figure)
        assert pixels.shape[0] > 100 and pixels.std() > 0  # not blank
        assert figure.with_suffix(".svg").stat().st_size > 1000


@pytest.mark.slow
def test_report_names_every_setup_and_embeds_figures(smoke):
    out, _, _ = smoke
    markdown = (out / "report.md").read_text()
    for setup in ("rand", "static"):
        assert re.search(rf"\| {setup} \| (100|200) \|", markdown)
    assert "static - rand" in markdown and "glove-6b-50d" in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "<table" in page


@pytest.mark.slow
def test_rerun_skips_finished_runs(smoke):
    out, paths, _ = smoke
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")}
    again = run_cli("run", "experiment=smoke", "-m", *paths)
    assert again.returncode == 0
    assert (again.stdout + again.stderr).count("already finished, skipping") == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")} == before


@pytest.mark.slow
def test_failing_run_leaves_finished_runs_and_is_reported(tmp_path, data_dir, mirror):
    paths = [
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path}",
    ]
    sweep = run_cli(
        "run", "-m", "experiment=smoke", "setup=rand", "seed=1", "train.n=100,99999", *paths
    )
    assert sweep.returncode != 0
    assert len(list(tmp_path.glob("smoke/runs/*/metrics.json"))) == 1
    report = run_cli("report", "experiment=smoke", *paths)
    assert report.returncode == 0, report.stderr[-2000:]
    failed = pd.read_csv(tmp_path / "smoke" / "failed_runs.csv")
    assert len(failed) == 1 and "train.n=99999 exceeds" in failed["error"].iloc[0]
    assert "train.n=99999" in (tmp_path / "smoke" / "report.md").read_text()


LAUNCHER_SETTINGS = {
    "joblib": ["hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra.launcher.timeout_min=10"],
    # our cluster config, pointed at a local Ray instance that the launcher starts
    "ray_cluster": ["hydra.launcher.ray.init.address=null", "+hydra.launcher.ray.init.num_cpus=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHER_SETTINGS))
def test_sweep_through_launcher_plugins(tmp_path, data_dir, mirror, launcher):
    paths = [
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path}",
    ]
    sweep = run_cli(
        "run",
        "-m",
        "experiment=smoke",
        "setup=static",
        "train.n=100",
        "seed=1,2",
        f"hydra/launcher={launcher}",
        *LAUNCHER_SETTINGS[launcher],
        *paths,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    finished = sorted(tmp_path.glob("smoke/runs/*/metrics.json"))
    assert [Path(p).parent.name.split("-")[3] for p in finished] == ["s1", "s2"]


def test_unknown_experiment_is_a_one_line_error(tmp_path):
    result = run_cli("report", "experiment=typo", f"paths.results_dir={tmp_path}")
    assert result.returncode == 2
    assert "experiment/typo" in last_error_line(result.stderr)
    assert not list(tmp_path.iterdir())
