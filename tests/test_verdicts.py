"""Aggregation, verdicts, claims and findings on small synthetic tables: every verdict can come
out "holds", "does not hold" and "inconclusive", and different configs are never pooled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embcompare.analysis import aggregate, claims, findings
from embcompare.analysis.verdicts import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Check,
    Estimate,
    Verdict,
    interval,
)
from embcompare.errors import EmbcompareError
from embcompare.reporting import report

REPO = Path(__file__).resolve().parents[1]


def run_row(setup: str, n: str, seed: int, accuracy: float, **extra) -> dict:
    n_train = 6920 if n == "all" else int(n)
    row = {
        "dataset": "sst2",
        "embedding": "glove-6b-50d",
        "model": "cnn",
        "setup": setup,
        "n": n,
        "n_train": n_train,
        "seed": seed,
        "test_accuracy": accuracy,
        "run_dir": f"sst2-{setup}-n{n}-s{seed}-{len(extra)}",
        "cfg.seed": json.dumps(seed),
        "cfg.setup.name": json.dumps(setup),
        "cfg.train.n": json.dumps(n),
        "cfg.train.optimizer.sparse": "true",
    }
    row.update(extra)
    return row


def curve_runs(gaps: dict[str, list[float]], base: float = 0.6) -> pd.DataFrame:
    """rand at `base`, static at base + gap per seed, for each n."""
    rows = []
    for n, per_seed in gaps.items():
        for seed, gap in enumerate(per_seed, start=1):
            rows.append(run_row("rand", n, seed, base))
            rows.append(run_row("static", n, seed, base + gap))
    return pd.DataFrame(rows)


# --- verdicts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.10, 0.11, 0.09, 0.10, 0.12], HOLDS),
        ([-0.10, -0.11, -0.09, -0.10, -0.12], FAILS),
        ([0.10, -0.08, 0.05, -0.04, 0.02], INCONCLUSIVE),
        ([0.10], INCONCLUSIVE),
        ([0.10, 0.10001], INCONCLUSIVE),  # two equal values: a spuriously narrow interval
    ],
)
def test_a_test_holds_fails_or_is_inconclusive_by_its_interval(values, expected):
    assert Check("gap", interval(values)).outcome == expected


def test_a_below_test_mirrors_the_sides():
    assert Check("rho", interval([0.01, 0.02, 0.0]), threshold=0.1, below=True).outcome == HOLDS
    assert Check("rho", interval([0.3, 0.32, 0.31]), threshold=0.1, below=True).outcome == FAILS


def test_a_claim_fails_when_any_test_fails_and_holds_only_when_all_hold():
    good, bad = interval([1.0, 1.1, 0.9]), interval([-1.0, -1.1, -0.9])
    unsure = interval([1.0, -1.0, 0.1])
    assert Verdict("c", [Check("x", good), Check("y", good)]).outcome == HOLDS
    assert Verdict("c", [Check("x", good), Check("y", bad)]).outcome == FAILS
    assert Verdict("c", [Check("x", good), Check("y", unsure)]).label == (
        "inconclusive, need more seeds"
    )


def test_one_repeat_prints_no_interval():
    assert interval([0.7]).text() == "0.700 (1 seed, too few for a CI)"
    assert "±" not in interval([0.7]).text()


# --- aggregation ----------------------------------------------------------------------------


def test_runs_of_different_configs_are_never_pooled():
    """The review's case: one extra run with sparse=false moved a paired gap from 0.200 to
    0.267 and made a row say 2 seeds while it averaged 3."""
    rows = [
        run_row("rand", "100", 1, 0.5),
        run_row("rand", "100", 2, 0.5),
        run_row("static", "100", 1, 0.7),
        run_row("static", "100", 2, 0.7),
        run_row("static", "100", 1, 0.9, **{"cfg.train.optimizer.sparse": "false"}),
    ]
    runs = pd.DataFrame(rows)
    summary = aggregate.summarize(runs, ["test_accuracy"])
    static = summary[summary["setup"] == "static"].set_index("variant")
    assert static.loc["train.optimizer.sparse=true", "repeats"] == 2
    assert static.loc["train.optimizer.sparse=true", "test_accuracy"] == pytest.approx(0.7)
    assert static.loc["train.optimizer.sparse=false", "repeats"] == 1
    paired = aggregate.paired_differences(runs).set_index("variant")
    assert paired.loc["train.optimizer.sparse=true", "mean_difference"] == pytest.approx(0.2)
    assert paired.loc["train.optimizer.sparse=true", "repeats"] == 2
    assert "train.optimizer.sparse=false" not in paired.index  # its rand runs do not exist


def test_display_only_settings_do_not_split_a_config():
    rows = [
        run_row("rand", "100", 1, 0.5),
        run_row("rand", "100", 2, 0.7, **{"cfg.verbose": "false"}),
    ]
    summary = aggregate.summarize(pd.DataFrame(rows), ["test_accuracy"])
    assert len(summary) == 1 and summary.iloc[0]["repeats"] == 2


def test_two_runs_of_one_config_and_seed_are_refused():
    rows = [run_row("rand", "100", 1, 0.5), run_row("rand", "100", 1, 0.6)]
    rows[1]["run_dir"] = "another"
    with pytest.raises(EmbcompareError, match="share a config and a repeat"):
        aggregate.summarize(pd.DataFrame(rows), ["test_accuracy"])


def test_tables_without_a_config_record_still_refuse_pooling():
    rows = [run_row("rand", "100", 1, 0.5), run_row("rand", "100", 1, 0.6)]
    legacy = pd.DataFrame(rows).drop(columns=[c for c in rows[0] if c.startswith("cfg.")])
    with pytest.raises(EmbcompareError, match="share a config and a repeat"):
        aggregate.summarize(legacy, ["test_accuracy"])


def test_a_metric_missing_for_some_seeds_says_how_many_it_used():
    rows = [run_row("rand", "100", s, 0.5, probe=v) for s, v in [(1, 0.6), (2, np.nan), (3, 0.7)]]
    summary = aggregate.summarize(pd.DataFrame(rows), ["probe"])
    row = summary.iloc[0]
    assert (row["repeats"], row["probe_repeats"]) == (3, 2)
    assert report._mean_ci(row, "probe").endswith("(2 of 3 seeds)")


def test_a_single_run_is_one_seed_not_plus_minus_zero():
    summary = aggregate.summarize(pd.DataFrame([run_row("rand", "100", 1, 0.5)]), ["test_accuracy"])
    text = report._mean_ci(summary.iloc[0], "test_accuracy")
    assert text == "0.500 (1 seed)"


def test_wilcoxon_is_left_out_where_it_cannot_reach_significance():
    five = curve_runs({"100": [0.1, 0.12, 0.11, 0.09, 0.13]})
    six = curve_runs({"100": [0.1, 0.12, 0.11, 0.09, 0.13, 0.1]})
    assert np.isnan(aggregate.paired_differences(five)["wilcoxon_p"].iloc[0])
    assert aggregate.paired_differences(six)["wilcoxon_p"].iloc[0] < 0.05
    assert aggregate.smallest_wilcoxon_p(5) == pytest.approx(0.0625)


# --- findings -------------------------------------------------------------------------------


def test_a_gap_that_peaks_in_the_middle_is_described_as_peaking_there():
    runs = curve_runs(
        {
            "50": [0.09, 0.10, 0.08, 0.09, 0.10],
            "500": [0.12, 0.13, 0.11, 0.12, 0.12],
            "all": [0.04, -0.02, 0.09, 0.01, 0.07],
        }
    )
    curve = aggregate.paired_differences(runs)
    text = findings.describe_curve(curve)
    assert "peak of +12.0" in text and "at n=500" in text
    assert "CI includes 0 from n=all on" in text
    assert "never changes sign" in text


def test_a_gap_that_changes_sign_says_where():
    runs = curve_runs({"50": [0.05, 0.06, 0.05], "all": [-0.05, -0.04, -0.06]})
    text = findings.describe_curve(aggregate.paired_differences(runs))
    assert "changes sign at n=all" in text


def test_a_gap_that_crosses_zero_in_the_middle_names_those_n():
    runs = curve_runs(
        {
            "50": [0.05, 0.06, 0.05],
            "500": [0.03, -0.04, 0.0],
            "all": [-0.05, -0.04, -0.06],
        }
    )
    text = findings.describe_curve(aggregate.paired_differences(runs))
    assert "its CI includes 0 at n=500 only" in text and "changes sign at n=500" in text


# --- claims ---------------------------------------------------------------------------------


def _claim_b(gaps):
    runs = curve_runs(gaps)
    return claims.pretrained_helps_when_small(runs, aggregate.paired_differences(runs))


def test_claim_b_holds_fails_and_is_inconclusive_as_the_numbers_say():
    holds = _claim_b({"50": [0.10, 0.11, 0.09, 0.10], "all": [0.01, 0.02, 0.0, 0.01]})
    fails = _claim_b({"50": [-0.10, -0.11, -0.09, -0.10], "all": [0.0, 0.01, 0.0, 0.01]})
    unsure = _claim_b({"50": [0.10, -0.09, 0.02, -0.01], "all": [0.0, 0.01, 0.0, 0.01]})
    assert (holds.outcome, fails.outcome, unsure.outcome) == (HOLDS, FAILS, INCONCLUSIVE)
    # "most when few": a gap as large at n=all as at n=50 fails that test
    flat = _claim_b({"50": [0.10, 0.11, 0.09, 0.10], "all": [0.12, 0.13, 0.12, 0.12]})
    assert flat.outcome == FAILS


def _claim_a_runs(accuracy, majority, rho, pairs=60):
    rows = []
    for seed, (acc, rho_value) in enumerate(zip(accuracy, rho, strict=True), start=1):
        rows.append(
            run_row(
                "rand",
                "all",
                seed,
                0.7,
                lexicon_probe_accuracy=acc,
                lexicon_probe_majority=majority,
                simlex999_seen_pairs=pairs,
                simlex999_seen_spearman=rho_value,
                simlex999_seen_spearman_source=0.35,
            )
        )
    return pd.DataFrame(rows)


def test_claim_a_holds_fails_or_is_inconclusive():
    polar = [0.80, 0.82, 0.81, 0.79, 0.80]
    holds = claims.task_not_meaning(_claim_a_runs(polar, 0.6, [0.02, 0.0, 0.03, -0.01, 0.01]))
    meaning = claims.task_not_meaning(_claim_a_runs(polar, 0.6, [0.3, 0.32, 0.31, 0.29, 0.3]))
    no_polarity = claims.task_not_meaning(
        _claim_a_runs([0.50, 0.52, 0.49, 0.51, 0.50], 0.6, [0.0, 0.01, 0.0, 0.01, 0.0])
    )
    noisy = claims.task_not_meaning(_claim_a_runs([0.9, 0.5, 0.7, 0.4, 0.8], 0.6, [0.0] * 5))
    assert holds.outcome == HOLDS
    assert meaning.outcome == FAILS and no_polarity.outcome == FAILS
    assert noisy.outcome == INCONCLUSIVE


def test_claim_a_does_not_score_similarity_on_too_few_seen_pairs():
    verdict = claims.task_not_meaning(_claim_a_runs([0.8] * 3, 0.6, [0.0] * 3, pairs=12))
    assert not any("Spearman" in check.what for check in verdict.checks)
    assert any("too few pairs" in note for note in verdict.notes)


def test_claims_refuse_a_table_that_mixes_datasets():
    runs = curve_runs({"50": [0.1, 0.1]})
    runs.loc[0, "dataset"] = "mr"
    with pytest.raises(EmbcompareError, match="mixes dataset"):
        claims.task_not_meaning(runs)


def test_claim_c_fails_when_the_layers_differ():
    exact_gaps = {"vocab": 5, "dim": 2, "batch": "1x2", "rows_with_gradient": 2,
                  "distinct_ids": 2, "output_gap": 0.0, "gradient_gap": 0.0}  # fmt: skip
    assert claims.one_hot_equivalence(exact_gaps).outcome == HOLDS
    assert claims.one_hot_equivalence({**exact_gaps, "gradient_gap": 0.5}).outcome == FAILS


def _pretraining(keras_ws, ci=None):
    rows = [
        {"name": "keras", "method": "keras_sgns", "arch": "sgns", "corpus": "imdb", "dim": 300,
         "tokens": 10, "train_seconds": 30.0, "ws353_spearman": keras_ws,
         "simlex999_spearman": 0.37},
        {"name": "gensim", "method": "gensim", "arch": "sgns", "corpus": "imdb", "dim": 300,
         "tokens": 10, "train_seconds": 10.0, "ws353_spearman": 0.47,
         "simlex999_spearman": 0.38},
    ]  # fmt: skip
    if ci is not None:
        for bench in ("ws353", "simlex999"):
            rows[0][f"{bench}_ratio_ci_low"], rows[0][f"{bench}_ratio_ci_high"] = ci
    return pd.DataFrame(rows)


def test_claim_d_needs_an_interval_and_pairs_engines_on_the_same_corpus():
    assert claims.keras_word2vec(_pretraining(0.46)).outcome == INCONCLUSIVE
    assert claims.keras_word2vec(_pretraining(0.46, ci=(0.93, 1.02))).outcome == HOLDS
    assert claims.keras_word2vec(_pretraining(0.20, ci=(0.35, 0.50))).outcome == FAILS
    other_corpus = _pretraining(0.46, ci=(0.93, 1.02))
    other_corpus.loc[1, "corpus"] = "wikitext2"
    verdict = claims.keras_word2vec(other_corpus)
    assert not verdict.checks and "0 gensim skip-gram runs on imdb" in verdict.notes[0]


def test_an_estimate_without_interval_is_inconclusive_even_far_from_the_threshold():
    assert Check("x", Estimate(5.0, np.nan, np.nan, 1)).outcome == INCONCLUSIVE


# --- reports from committed tables ----------------------------------------------------------


def test_report_rebuilds_from_the_committed_runs_table_without_run_dirs(tmp_path):
    committed = REPO / "results" / "learning_curve"
    shutil.copytree(committed, tmp_path / "learning_curve", ignore=shutil.ignore_patterns("runs"))
    md, html = report.build("learning_curve", tmp_path)
    text = md.read_text()
    assert "Built from the committed runs.parquet (" in text
    assert "rising to a peak" in text or "largest at the smallest n" in text
    assert (tmp_path / "learning_curve" / "summary.csv").is_file() and html.is_file()


def test_report_says_what_is_missing_when_there_is_nothing_to_build_from(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbcompareError, match="no committed .*runs.parquet"):
        report.build("empty", tmp_path)


def _alps_runs(rand_transfer, static_transfer, rand_drop, static_drop):
    rows = []
    for seed in range(1, 5):
        jitter = 0.01 * seed
        for setup, transfer, drop in (
            ("rand", rand_transfer, rand_drop),
            ("static", static_transfer, static_drop),
        ):
            rows.append(
                run_row(
                    setup,
                    "100",
                    seed,
                    0.6,
                    transfer_probe_accuracy=transfer + jitter,
                    perturbed_changed_original_accuracy=0.7,
                    perturbed_changed_accuracy=0.7 - drop - jitter / 2,
                )  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_unseen_word_checks_hold_or_fail_as_the_numbers_say():
    transfers = claims._unseen_word_tests(_alps_runs(0.5, 0.7, 0.10, 0.02), "100")
    assert [c.outcome for c in transfers] == [HOLDS, HOLDS]
    reversed_ = claims._unseen_word_tests(_alps_runs(0.7, 0.5, 0.02, 0.10), "100")
    assert [c.outcome for c in reversed_] == [FAILS, FAILS]


def test_ratio_interval_is_one_for_the_same_space_and_below_for_a_noisier_one():
    from embcompare.analysis import engines
    from embcompare.analysis.similarity import Space
    from embcompare.analysis.word_benchmarks import WordPairs

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(80)]
    vectors = rng.normal(size=(80, 10))
    first = tuple(words[i] for i in range(0, 80, 2))
    second = tuple(words[i] for i in range(1, 80, 2))
    clean = Space("clean", words, vectors)
    gold = np.array([vectors[i] @ vectors[i + 1] / np.linalg.norm(vectors[i])
                     / np.linalg.norm(vectors[i + 1]) for i in range(0, 80, 2)])  # fmt: skip
    pairs = WordPairs("toy", Path("toy.txt"), first, second, gold)
    assert engines.ratio_interval([clean, clean], pairs, 200, 0) == (1.0, 1.0)
    noisy = Space("noisy", words, vectors + rng.normal(scale=2.0, size=vectors.shape))
    low, high = engines.ratio_interval([noisy, clean], pairs, 200, 0)
    assert high < 0.9 and low < high


def test_a_single_n_is_described_without_a_curve():
    runs = curve_runs({"all": [0.02, 0.03, 0.025, 0.02]})
    text = findings.describe_curve(aggregate.paired_differences(runs))
    assert text.startswith("+2.4 [") and text.endswith("points at n=all; its 95% CI excludes 0.")


def test_claim_d_without_pretraining_outputs_is_not_measured():
    verdict = claims.keras_word2vec(pd.DataFrame())
    assert verdict.outcome == "not measured" and "embcompare pretrain" in verdict.notes[0]


def test_a_curve_of_single_runs_claims_no_interval():
    runs = curve_runs({"100": [0.01], "200": [0.03]})
    text = findings.describe_curve(aggregate.paired_differences(runs))
    assert "too few repeats for CIs" in text and "CI includes" not in text


def test_the_saved_sentence_sample_is_seeded_and_has_every_class():
    from embcompare.analysis.task_scores import majority_rate, stratified_sample

    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)  # sorted by class, as MR's test set
    chosen = stratified_sample(labels, 100, seed=3)
    assert set(labels[chosen]) == {0, 1, 2}
    assert abs(len(chosen) - 100) <= 2 and (np.diff(chosen) > 0).all()
    assert (stratified_sample(labels, 100, seed=3) == chosen).all()
    assert not (stratified_sample(labels, 100, seed=4) == chosen).all()
    assert majority_rate(labels) == pytest.approx(0.9)
