"""Every experiment in experiments/ runs in a tiny mode, in-process (fast tier) and through
the CLI (slow tier); every value its sweep names composes; kim2014's report sets our numbers
beside Kim's."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_cli

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
TINY = ["train.n=60", "train.epochs=1", "train.min_steps=0"]


def paths_for(data_dir, mirror, results) -> list[str]:
    return [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", f"paths.results_dir={results}"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_in_process_in_tiny_mode(cfg_run, tmp_path, name):
    from embcompare import run

    cfg = cfg_run(f"experiment={name}")
    metrics = run.execute(cfg, tmp_path)
    assert metrics["n_train"] == 60 and metrics["epochs"] == 1 and metrics["model"] == "bow"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert {"history.csv", "embedding.npz", "sentences.npz"} <= {p.name for p in tmp_path.iterdir()}


def swept_values(name: str) -> dict[str, list[str]]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from embcompare.config import compose

    params = compose("config", [f"experiment={name}"], with_hydra=True).hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return {
        o.key_or_group: (
            list(o.sweep_string_iterator())
            if o.is_sweep_override()
            else [o.get_value_element_as_str()]
        )
        for o in parsed
    }


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_swept_value_composes(name):
    from embcompare.config import compose

    swept = swept_values(name)
    assert swept, f"experiment {name} sweeps nothing"
    for key, values in swept.items():
        for value in values:
            cfg = compose("config", [f"experiment={name}", f"{key}={value}"])
            assert cfg.name == name


def test_experiments_folder_is_the_packaged_experiment_group():
    from embcompare.config import CONF_DIR

    packaged = CONF_DIR / "experiment"
    assert sorted(p.stem for p in packaged.glob("*.yaml")) == EXPERIMENTS
    for name in EXPERIMENTS:
        top_level = (REPO / "experiments" / f"{name}.yaml").read_text()
        assert top_level == (packaged / f"{name}.yaml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_once_in_tiny_mode_through_the_cli(tmp_path, data_dir, mirror, name):
    result = run_cli("run", f"experiment={name}", *TINY, *paths_for(data_dir, mirror, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = (tmp_path / name / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["n_train"] == 60
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


@pytest.fixture(scope="module")
def kim_tiny(tmp_path_factory, data_dir, mirror):
    results = tmp_path_factory.mktemp("results")
    paths = paths_for(data_dir, mirror, results)
    sweep = run_cli(
        "run",
        "-m",
        "experiment=kim2014",
        "dataset=trec,sst2_phrases",
        "setup=rand_kim,static,nonstatic",
        "dataset.split.fold=0,1",
        "train.n=150",
        *TINY[1:],
        *paths,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = run_cli("report", "experiment=kim2014", *paths)
    assert report.returncode == 0, report.stderr[-3000:]
    return results / "kim2014"


@pytest.mark.slow
def test_kim2014_repeats_are_folds_and_seeds(kim_tiny):
    runs = pd.read_csv(kim_tiny / "runs.csv")
    assert len(runs) == 12
    assert sorted(runs["seed"].unique()) == [0, 1]
    # given splits: the test set stays, only the seed moves
    test_sizes = runs.groupby("dataset")["n_test"].agg(set).to_dict()
    assert test_sizes == {"trec": {500}, "sst2_phrases": {1821}}


@pytest.mark.slow
def test_kim2014_report_sets_ours_beside_table2(kim_tiny):
    compared = pd.read_csv(kim_tiny / "paper_comparison.csv")
    assert len(compared) == 6
    assert set(compared["dataset"]) == {"TREC", "SST-2"}
    assert (compared["repeats"] == 2).all()
    trec_rand = compared[(compared["dataset"] == "TREC") & (compared["setup"] == "rand")].iloc[0]
    assert trec_rand["kim"] == 91.2
    assert trec_rand["difference"] == pytest.approx(trec_rand["ours"] - 91.2)
    text = (kim_tiny / "report.md").read_text()
    assert "## Side by side with Kim (2014), Table 2" in text
    assert "(91.2; " in text and "| multichannel | — (81.1) |" in text
    assert "Table 3 counterpart" in text and "| good | static |" in text
    assert "Time per dataset" in text
    assert "![glove-6b-50d: ours vs Kim (2014)](figures/paper_glove-6b-50d.png)" in text
    assert (kim_tiny / "figures" / "paper_glove-6b-50d.png").read_bytes()[:4] == b"\x89PNG"
    assert "accuracy_vs_n" not in text  # one n: no curves over n
    assert Path(kim_tiny / "report.html").read_text().count("<table") >= 4
