"""Per-setup tuning on dev (`embcompare tune`): a real two-trial Optuna study per setup on the
smoke experiment writes tuned.yaml, optimises dev accuracy (never test), and runs fresh seeds
with the defaults and the tuned values; the default-vs-tuned gaps are paired by seed and their
verdict can come out each way."""

from __future__ import annotations

import json
from contextlib import redirect_stderr
from io import StringIO

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import last_error_line


def tune_paths(data_dir, mirror, results) -> list[str]:
    return [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}", f"paths.results_dir={results}"]


@pytest.fixture(scope="module")
def smoke_tuned(tmp_path_factory, data_dir, mirror):
    from embcompare import cli

    results = tmp_path_factory.mktemp("results")
    code = cli.main(["tune", "experiment=smoke", *tune_paths(data_dir, mirror, results)])
    assert code == 0
    return results / "smoke"


def metrics_under(folder):
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/metrics.json"))]


@pytest.mark.slow
def test_a_two_trial_study_per_setup_writes_tuned_yaml(smoke_tuned):
    tuned = yaml.safe_load((smoke_tuned / "tuned.yaml").read_text())
    assert set(tuned["studies"]) == {"rand-n100", "static-n100"}
    assert tuned["budget"]["trials_per_study"] == 2
    rand = tuned["studies"]["rand-n100"]
    assert len(rand["trials"]) == 2 and rand["search"] == "training_and_init"
    assert "setup.channels.0.init_scale" in rand["best"]["params"]
    assert "setup.channels.0.init_scale" not in tuned["studies"]["static-n100"]["best"]["params"]
    assert rand["defaults"]["train.optimizer.learning_rate"] == 0.001
    for study in tuned["studies"].values():
        means = [trial["mean_dev_accuracy"] for trial in study["trials"]]
        assert study["best"]["mean_dev_accuracy"] == max(means)
        for trial in study["trials"]:
            seeds = trial["dev_accuracy"]
            assert set(seeds) == {"101", "102", "103"}
            assert trial["mean_dev_accuracy"] == pytest.approx(np.mean(list(seeds.values())))


@pytest.mark.slow
def test_the_study_optimises_dev_accuracy_never_test(smoke_tuned):
    tuned = yaml.safe_load((smoke_tuned / "tuned.yaml").read_text())
    tuning_runs = metrics_under(smoke_tuned / "tuning" / "runs")
    assert len(tuning_runs) == 2 * 2 * 3  # studies x trials x tuning seeds
    assert {run["seed"] for run in tuning_runs} == {101, 102, 103}
    for name, study in tuned["studies"].items():
        sweeper = yaml.safe_load((smoke_tuned / "tuning" / name / "optimization_results.yaml")
                                 .read_text())  # fmt: skip
        assert sweeper["best_value"] == pytest.approx(study["best"]["mean_dev_accuracy"])
        lr = study["best"]["params"]["train.optimizer.learning_rate"]
        best_runs = [
            run
            for run in tuning_runs
            if run["setup"] == study["setup"]
            and json.loads(run["cfg.train.optimizer.learning_rate"]) == lr
        ]
        assert len(best_runs) == 3
        dev = np.mean([run["dev_accuracy"] for run in best_runs])
        test = np.mean([run["test_accuracy"] for run in best_runs])
        assert sweeper["best_value"] == pytest.approx(dev) and dev != pytest.approx(test)


@pytest.mark.slow
def test_fresh_seeds_run_default_and_tuned(smoke_tuned):
    tuned = yaml.safe_load((smoke_tuned / "tuned.yaml").read_text())
    runs = metrics_under(smoke_tuned / "runs")
    assert len(runs) == 2 * 3 * 2  # setups x fresh seeds x arms
    assert {run["seed"] for run in runs} == {1, 2, 3}
    tuned_runs = [run for run in runs if "cfg.tuned_by" in run]
    assert len(tuned_runs) == 6
    for run in tuned_runs:
        study = tuned["studies"][json.loads(run["cfg.tuned_by"])]
        assert run["setup"] == study["setup"]
        for key, value in study["best"]["params"].items():
            assert json.loads(run[f"cfg.{key}"]) == value
    defaults = [run for run in runs if "cfg.tuned_by" not in run]
    assert {json.loads(run["cfg.train.optimizer.learning_rate"]) for run in defaults} == {0.001}


@pytest.mark.slow
def test_the_report_puts_default_and_tuned_gaps_side_by_side(smoke_tuned):
    from embcompare.reporting import report

    md_path, _ = report.build("smoke", smoke_tuned.parent)
    text = md_path.read_text()
    assert "## Do the gaps survive tuning?" in text
    assert "2 TPESampler trials (seed 1) x 3 tuning seeds" in text
    assert "| 100 | static - rand |" in text
    assert (smoke_tuned / "figures" / "gaps_default_vs_tuned.png").is_file()
    committed = pd.read_parquet(smoke_tuned / "runs.parquet")
    assert len(committed) == 12  # both arms kept, so the report rebuilds without run dirs


def test_a_tune_without_a_tune_block_is_one_line(capsys):
    from embcompare import cli

    with redirect_stderr(StringIO()) as stderr:
        code = cli.main(["tune", "experiment=learning_curve", "paths.results_dir=/tmp/x"])
    assert code == 2
    assert "has no `tune` block" in last_error_line(stderr.getvalue())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tune.trials=0", "tune.trials=0 must be a positive integer"),
        ("tune.seeds=[101,1]", "tune.tuning_seeds and tune.seeds overlap"),
        ("tune.search.rand=nosuch", "tune.search.rand='nosuch': no such config"),
        ("tune.n=[0]", "train.n=0 must be a positive integer or 'all'"),
        ("tune.setups=[]", "tune.setups=[] must be a non-empty list"),
    ],
)
def test_a_bad_tune_block_is_one_line_naming_the_key(tmp_path, override, message):
    from embcompare import cli

    with redirect_stderr(StringIO()) as stderr:
        code = cli.main(["tune", "experiment=smoke", override, f"paths.results_dir={tmp_path}"])
    assert code == 2
    assert message in last_error_line(stderr.getvalue())
    assert not (tmp_path / "smoke" / "tuned.yaml").exists()


def test_a_study_whose_every_trial_fails_stops_with_one_line(tmp_path, data_dir, mirror):
    from embcompare import cli

    args = ["tune", "experiment=smoke", "tune.n=[100000]", *tune_paths(data_dir, mirror, tmp_path)]
    with redirect_stderr(StringIO()) as stderr:
        code = cli.main(args)
    assert code == 2
    line = last_error_line(stderr.getvalue())
    assert "study rand-n100000: all 2 trials failed" in line and "exceeds" in line
    assert not (tmp_path / "smoke" / "tuned.yaml").exists()


# ---------------------------------------------------------------- gaps on hand-made tables


def arm_rows(arm: str, setup: str, accuracies, n="100") -> list[dict]:
    study = json.dumps(f"{setup}-n{n}") if arm == "tuned" else None
    return [
        {"setup": setup, "n": n, "seed": seed, "test_accuracy": acc, "cfg.tuned_by": study}
        for seed, acc in enumerate(accuracies, 1)
    ]


def table(default_static, default_rand, tuned_static, tuned_rand) -> pd.DataFrame:
    return pd.DataFrame(
        arm_rows("default", "static", default_static)
        + arm_rows("default", "rand", default_rand)
        + arm_rows("tuned", "static", tuned_static)
        + arm_rows("tuned", "rand", tuned_rand)
    )


RAND = [0.60, 0.62, 0.58, 0.61, 0.59]


@pytest.mark.parametrize(
    ("tuned_lead", "outcome"),
    [
        ([0.02, 0.025, 0.018, 0.021, 0.016], "holds"),
        ([-0.02, -0.025, -0.018, -0.021, -0.016], "does not hold"),
        ([0.03, -0.03, 0.01, -0.02, 0.005], "inconclusive"),
    ],
)
def test_the_tuned_gap_verdict_comes_out_each_way(tuned_lead, outcome):
    from embcompare.analysis import tuned

    default_static = [r + 0.05 + 0.002 * i for i, r in enumerate(RAND)]
    tuned_rand = [r + 0.01 for r in RAND]
    tuned_static = [r + lead for r, lead in zip(tuned_rand, tuned_lead, strict=True)]
    gaps = tuned.gap_table(table(default_static, RAND, tuned_static, tuned_rand))
    (row,) = gaps.to_dict("records")
    assert row["comparison"] == "static - rand" and row["tuned gap > 0"] == outcome
    assert row["default_mean"] == pytest.approx(0.054)
    assert row["tuned_mean"] == pytest.approx(np.mean(tuned_lead))
    assert row["share surviving"] == pytest.approx(np.mean(tuned_lead) / 0.054)


def test_gaps_pair_by_seed_whatever_the_row_order():
    from embcompare.analysis import tuned

    runs = table([0.70, 0.65, 0.66], [0.60, 0.64, 0.61], [0.71, 0.66, 0.69], [0.65, 0.60, 0.62])
    shuffled = runs.sample(frac=1.0, random_state=3)
    gap = tuned.paired_gap(shuffled, "tuned", "static", "rand", "100")
    assert gap.mean == pytest.approx(np.mean([0.06, 0.06, 0.07]))
    assert gap.high - gap.low < 0.03  # paired: the seed-to-seed spread cancels
    effect = tuned.tuning_effect(shuffled, "rand", "100")
    assert effect.mean == pytest.approx(np.mean([0.05, -0.04, 0.01]))


def test_no_share_of_a_default_gap_that_may_be_zero():
    from embcompare.analysis import tuned

    runs = table([0.61, 0.60, 0.60], [0.60, 0.61, 0.59], [0.66, 0.67, 0.65], [0.60, 0.61, 0.59])
    (row,) = tuned.gap_table(runs).to_dict("records")
    assert np.isnan(row["share surviving"])


def test_two_runs_of_one_seed_in_an_arm_are_refused():
    from embcompare.analysis import tuned
    from embcompare.errors import EmbcompareError

    runs = table([0.7, 0.7, 0.7], [0.6, 0.6, 0.6], [0.7, 0.7, 0.7], [0.6, 0.6, 0.6])
    doubled = pd.concat([runs, runs.iloc[:1]], ignore_index=True)
    with pytest.raises(EmbcompareError, match="two runs share a seed"):
        tuned.gap_table(doubled)
