"""The families analysis: which family a run's vectors belong to, what each family's rows hold,
each Keras objective against its reference engine, and the subword check for unseen words;
every check can come out holds, does not hold and inconclusive."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from embcompare.analysis import engines, families
from embcompare.analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE
from embcompare.analysis.word_benchmarks import WordPairs
from embcompare.reporting import plot, report
from embcompare.vectors.pretrained import write_cache

from conftest import REPO

CACHE = '"<paths.cache_dir>/pretrained/{}"'


def run_row(embedding, directory, setup, n, seed, **metrics) -> dict:
    row = {
        "dataset": "sst2", "model": "bow", "embedding": embedding, "setup": setup, "n": n,
        "seed": seed, "n_train": 6920 if n == "all" else int(n), "embedding_dim": 300,
        "cfg.embedding.path": CACHE.format(directory) if directory else np.nan,
        "test_accuracy": 0.8, "lexicon_probe_accuracy": 0.7, "lexicon_probe_majority": 0.6,
        "analogy_accuracy": 0.3, "movement_relative_change": 0.1,
        "test_accuracy_oov_words": 0.7, "test_sentences_oov_words": 40,
    }  # fmt: skip
    for bench in families.SIMILARITY:
        row |= {f"{bench}_seen_spearman": 0.4, f"{bench}_seen_spearman_ci_low": 0.3,
                f"{bench}_seen_spearman_ci_high": 0.5, f"{bench}_seen_pairs": 60}  # fmt: skip
    return row | metrics


def test_a_runs_family_comes_from_the_directory_pretrain_names():
    assert families.family_of("w", CACHE.format("gensim-cbow-imdb_unsup-300d")) == (
        "word2vec CBOW, imdb_unsup 300d",
        "gensim",
    )
    assert families.family_of("w", CACHE.format("keras-fasttext-sgns-imdb_unsup-300d")) == (
        "fastText skip-gram, imdb_unsup 300d",
        "Keras Embedding",
    )
    assert families.family_of("w", CACHE.format("mittens-glove-wikitext2-50d")) == (
        "GloVe, wikitext2 50d",
        "mittens",
    )
    # published vectors and directories of other names keep their embedding name
    assert families.family_of("glove-6b-50d", np.nan) == ("glove-6b-50d", "published")
    assert families.family_of("mine", CACHE.format("my-vectors")) == ("mine", "published")


def test_holdings_table_scores_every_row_on_its_seen_pairs_and_orders_families():
    rows = []
    for seed in (1, 2, 3):
        rows += [
            run_row("sgns-keras", "keras-sgns-imdb_unsup-300d", "static", "all", seed),
            run_row("w2v-sg", "gensim-sgns-imdb_unsup-300d", "nonstatic", "all", seed,
                    simlex999_seen_spearman=0.3 + 0.01 * seed),  # fmt: skip
            run_row("w2v-sg", "gensim-sgns-imdb_unsup-300d", "rand", "all", seed,
                    lexicon_probe_accuracy=0.6 + 0.05 * seed),  # fmt: skip
            run_row("glove-6b-50d", None, "static", "all", seed),
            run_row("glove-6b-50d", None, "static", "50", seed, test_accuracy=0.1),
        ]
    table = families.holdings_table(pd.DataFrame(rows))
    assert list(table["family"]) == [
        "glove-6b-50d",
        "word2vec skip-gram, imdb_unsup 300d",
        "word2vec skip-gram, imdb_unsup 300d",
        "task-trained rand, 300d",
    ]
    assert list(table["engine"]) == ["published", "gensim", "Keras Embedding", "the task's loss"]
    assert list(table["rows"]) == [
        "as pretrained", "fine-tuned on the task", "as pretrained", "task-trained, Keras init"
    ]  # fmt: skip
    fine_tuned = table.iloc[1]
    assert fine_tuned["SimLex-999 (seen pairs)"] == "0.320 [0.300, 0.500]"
    assert fine_tuned["seen pairs (WS/SimLex/MEN)"] == "60/60/60"
    assert fine_tuned["test accuracy"] == "80.0 [80.0, 80.0]"  # n=50 runs stay out
    assert fine_tuned["seen rows moved"] == "10.0%" and table.iloc[0]["seen rows moved"] == "—"
    rand = table.iloc[3]
    assert rand["analogies"] == "—" and table.iloc[0]["analogies"] == "30.0%"
    # probe gains 0.05, 0.10, 0.15 over seeds: mean 0.1, t-interval 0.1 -/+ 4.303 * 0.05 / sqrt 3
    assert rand["lexicon probe − majority"] == "0.100 [-0.024, 0.224]"


def test_curve_and_oov_tables_have_one_column_per_n_in_order():
    rows = [
        run_row("glove-6b-50d", None, "static", n, seed, test_accuracy=acc)
        for n, acc in (("all", 0.8), ("1000", 0.75), ("50", 0.6))
        for seed in (1, 2, 3)
    ]
    curve = families.curve_table(pd.DataFrame(rows))
    assert [c for c in curve.columns if c.startswith("n=")] == ["n=50", "n=1000", "n=all"]
    assert curve.iloc[0]["n=1000"] == "75.0 [75.0, 75.0]"
    points = families.curve_points(pd.DataFrame(rows))
    assert sorted(points["n_train"]) == [50, 1000, 6920]
    oov = families.oov_table(pd.DataFrame(rows))
    assert oov.iloc[0]["sentences"] == "40" and oov.iloc[0]["unseen words get"] == "random"


@pytest.mark.parametrize(
    ("gains", "outcome"),
    [
        ((0.05, 0.06, 0.07), HOLDS),
        ((-0.05, -0.06, -0.07), FAILS),
        ((0.05, -0.05, 0.01), INCONCLUSIVE),
    ],
)
def test_the_subword_check_can_hold_fail_or_stay_open(gains, outcome):
    rows = []
    for seed, gain in zip((1, 2, 3), gains, strict=True):
        for unseen, accuracy in (("random", 0.6), ("subwords", 0.6 + gain)):
            row = run_row("ft", "gensim-fasttext-sgns-imdb_unsup-300d", "static", "50", seed,
                          test_accuracy_oov_words=accuracy)  # fmt: skip
            row["cfg.embedding.unseen"] = json.dumps(unseen) if unseen != "random" else np.nan
            rows.append(row)
    (check,) = families.subword_checks(pd.DataFrame(rows))
    assert check.outcome == outcome
    assert check.estimate.mean == pytest.approx(np.mean(gains))
    assert "fastText skip-gram" in check.what and "40 test sentences" in check.what
    oov = families.oov_table(pd.DataFrame(rows))
    assert list(oov["unseen words get"]) == ["random", "subwords"]


def pretraining_row(name, method, arch, seconds, **scores) -> dict:
    row = {"name": name, "method": method, "arch": arch, "corpus": "imdb_unsup", "dim": 300,
           "tokens": 1000, "train_seconds": seconds}  # fmt: skip
    return row | {f"{bench}_spearman": value for bench, value in scores.items()}


def test_each_keras_objective_meets_its_own_reference_engine():
    table = pd.DataFrame([
        pretraining_row("gensim-sgns", "gensim", "sgns", 600, ws353=0.5, simlex999=0.4, men=0.6),
        # gensim's fastText records arch sgns too: it must not pass for word2vec's reference
        pretraining_row("gensim-fasttext", "gensim_fasttext", "sgns", 900, ws353=0.5,
                        simlex999=0.4, men=0.6),
        pretraining_row("keras-sgns", "keras_sgns", "sgns", 900, ws353=0.5, simlex999=0.4,
                        men=0.6),
        pretraining_row("gensim-cbow", "gensim", "cbow", 100, ws353=0.4, simlex999=0.3, men=0.5),
        pretraining_row("keras-cbow", "keras_cbow", "cbow", 600, ws353=0.38, simlex999=0.2,
                        men=0.5),
        pretraining_row("mittens-glove", "mittens_glove", "glove", 100, ws353=0.3, simlex999=0.2,
                        men=0.4),
        pretraining_row("keras-glove", "keras_glove", "glove", 30, ws353=0.3, simlex999=0.2,
                        men=0.4),
    ])  # fmt: skip
    assert engines.reference_of(table, table.iloc[4])["name"] == "gensim-cbow"
    assert engines.reference_of(table, table.iloc[6])["name"] == "mittens-glove"
    assert engines.reference_of(table, table.iloc[2])["name"] == "gensim-sgns"
    intervals = {  # (ratio, low, high) per Keras row and benchmark
        4: {"ws353": (0.95, 0.97, 0.99), "simlex999": (0.7, 0.6, 0.8), "men": (1.0, 0.9, 1.1)},
        6: {"ws353": (1.0, 0.96, 1.04), "simlex999": (1.0, 0.96, 1.04), "men": (1.0, 0.97, 1.1)},
    }
    for index, by_bench in intervals.items():
        for bench, (ratio, low, high) in by_bench.items():
            table.loc[index, [f"{bench}_ratio", f"{bench}_ratio_ci_low",
                              f"{bench}_ratio_ci_high", f"{bench}_ratio_pairs"]] = (
                ratio, low, high, 300)  # fmt: skip
    outcomes = [(c.what.split(":")[0], c.outcome) for c in families.engine_checks(table)]
    assert outcomes == [
        ("word2vec CBOW", HOLDS), ("word2vec CBOW", FAILS), ("word2vec CBOW", INCONCLUSIVE),
        ("GloVe", HOLDS), ("GloVe", HOLDS), ("GloVe", HOLDS),
    ]  # fmt: skip
    rows = families.engine_table(table).set_index("objective")
    assert rows.loc["word2vec CBOW", "reference"] == "gensim"
    assert rows.loc["word2vec CBOW", "minutes, Keras / reference"] == "10 / 2 = 6.0x"
    assert rows.loc["word2vec CBOW", "time <= 5x"] == "no"
    assert rows.loc["GloVe", "time <= 5x"] == "yes"
    assert rows.loc["GloVe", "SimLex-999 share"] == "1.00 [0.96, 1.04]"
    assert rows.loc["word2vec skip-gram", "SimLex-999 share"] == "no interval"


def test_ratio_intervals_reach_every_keras_row_and_count_the_shared_pairs(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    clean = rng.normal(size=(40, 8))
    pairs = WordPairs(
        "toy",
        tmp_path / "toy.txt",
        tuple(words[i] for i in range(0, 40, 2)),
        tuple(words[i] for i in range(1, 40, 2)),
        np.array([float(clean[i] @ clean[i + 1]) for i in range(0, 40, 2)]),
    )
    write_cache(tmp_path / "gensim-cbow", words, clean)
    write_cache(tmp_path / "keras-cbow", words[:30], clean[:30])  # covers 15 of the 20 pairs
    table = pd.DataFrame([
        pretraining_row("gensim-cbow", "gensim", "cbow", 10),
        pretraining_row("keras-cbow", "keras_cbow", "cbow", 20),
    ])  # fmt: skip
    out = engines.with_ratio_intervals(table, tmp_path, {"men": pairs}, lowercase=False)
    keras = out.iloc[1]
    assert keras["men_ratio"] == pytest.approx(1.0) and keras["men_ratio_pairs"] == 15
    assert keras["men_ratio_ci_low"] == pytest.approx(1.0)
    assert pd.isna(out.iloc[0].get("men_ratio"))


def test_each_embedding_and_variant_gets_its_own_accuracy_figure(tmp_path):
    rows = []
    for embedding, variant in (("glove", ""), ("fasttext", ""), ("fasttext", "unseen=subwords")):
        for setup in ("static", "nonstatic"):
            for n, n_train in (("50", 50), ("all", 6920)):
                rows.append({"dataset": "sst2", "embedding": embedding, "model": "bow",
                             "variant": variant, "setup": setup, "n": n, "n_train": n_train,
                             "test_accuracy": 0.7, "test_accuracy_ci95": 0.01,
                             "repeats": 3})  # fmt: skip
    paths = plot.accuracy_vs_n(pd.DataFrame(rows), tmp_path)
    assert sorted(p.name for p in paths) == [
        "accuracy_vs_n_sst2_bow_fasttext.png",
        "accuracy_vs_n_sst2_bow_fasttext_unseen-subwords.png",
        "accuracy_vs_n_sst2_bow_glove.png",
    ]
    one = pd.DataFrame([r for r in rows if r["embedding"] == "glove"])
    assert [p.name for p in plot.accuracy_vs_n(one, tmp_path)] == ["accuracy_vs_n_sst2_bow.png"]


def test_the_leader_is_ranked_on_the_seeds_every_family_ran():
    rows = [
        run_row("glove-6b-50d", None, "static", "50", seed, test_accuracy=acc)
        for seed, acc in ((1, 0.60), (2, 0.62), (3, 0.64))
    ] + [
        run_row("w2v", "gensim-sgns-imdb_unsup-300d", "static", "50", seed, test_accuracy=acc)
        for seed, acc in ((1, 0.70), (2, 0.71), (3, 0.72), (4, 0.10))  # seed 4: glove lacks it
    ]
    (line,) = families.leader_lines(pd.DataFrame(rows))
    assert line.startswith(
        "static at n=50: word2vec skip-gram, imdb_unsup 300d (gensim) leads glove-6b-50d by 9.0 ["
    )
    assert line.endswith("over 3 seeds (points)")


@pytest.mark.slow
def test_the_families_report_rebuilds_from_its_committed_tables(tmp_path):
    committed = REPO / "results" / "families"
    shutil.copytree(committed, tmp_path / "families", ignore=shutil.ignore_patterns("runs"))
    md, html = report.build("families", tmp_path, families_from=tmp_path / "no-vectors-here")
    text = md.read_text()
    assert "## Is a task-trained Embedding like word2vec, GloVe or fastText?" in text
    assert "### Each objective as a Keras Embedding, against its reference engine" in text
    holdings = pd.read_csv(tmp_path / "families" / "families.csv")
    assert {"as pretrained", "fine-tuned on the task", "task-trained, Keras init",
            "task-trained, Kim init"} <= set(holdings["rows"])  # fmt: skip
    assert (holdings["seeds"] >= 3).all()
    figures = tmp_path / "families" / "figures"
    for stem in ("families_meaning_polarity", "families_accuracy_vs_n"):
        assert (figures / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert "Keras / gensim" in text  # the engine checks read the committed pretraining.csv
