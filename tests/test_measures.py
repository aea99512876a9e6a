"""Measures of issue 13 on small hand-checked inputs: movement, the seen-pair filter and its
bootstrap CI, folds split by word, the lexicon and transfer probes, the perturbed test set, the
lexicon file; and one small real run that writes every new key into metrics.json."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from embcompare.analysis import lexicon, measures
from embcompare.analysis.similarity import Space
from embcompare.analysis.word_benchmarks import WordPairs
from embcompare.errors import EmbcompareError
from embcompare.vectors.pretrained import PretrainedVectors

from conftest import last_error_line, run_cli


def pairs_of(rows) -> WordPairs:
    first, second, gold = zip(*rows, strict=True)
    return WordPairs("toy", Path("toy.txt"), first, second, np.array(gold, dtype=float))


# --- movement -----------------------------------------------------------------------------


def test_frequency_bands_start_at_k_and_end_open():
    assert measures.frequency_bands(5, [20, 100]) == [(5, 19), (20, 99), (100, None)]
    assert measures.frequency_bands(30, [20, 100]) == [(30, 99), (100, None)]
    assert [measures.band_name(*b) for b in measures.frequency_bands(5, [20])] == [
        "seen5to19",
        "seen20plus",
    ]


def test_movement_is_cosine_and_relative_change_of_seen_rows_by_band():
    before = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [5.0, 5.0]])
    after = before.copy()
    after[0] = 2 * before[0]  # grows: cosine 1, ||after - before|| / ||before|| = 1
    after[1] = -before[1]  # flips: cosine -1, relative change 2
    after[2] = [2.0, 2.0]  # turns 45 degrees: relative change ||(2, 0)|| / 2 = 1
    after[4] = [0.0, 0.0]  # unseen (count 0) rows are left out whatever they do
    counts = np.array([5, 25, 150, 3, 0])  # row 3 is below k

    moved = measures.movement(before, after, counts, k=5, edges=[20, 100])

    assert moved["words"] == 3
    assert moved["cosine"] == pytest.approx((1 - 1 + np.sqrt(0.5)) / 3)
    assert moved["relative_change"] == pytest.approx((1 + 2 + 1) / 3)
    assert (moved["cosine_seen5to19"], moved["relative_change_seen5to19"]) == (1.0, 1.0)
    assert moved["cosine_seen20to99"] == pytest.approx(-1.0)
    assert moved["relative_change_seen20to99"] == pytest.approx(2.0)
    assert moved["cosine_seen100plus"] == pytest.approx(np.sqrt(0.5))
    assert [moved[f"words_{b}"] for b in ("seen5to19", "seen20to99", "seen100plus")] == [1, 1, 1]
    untouched = measures.movement(before, before, counts, 5, [20, 100])
    assert (untouched["cosine"], untouched["relative_change"]) == (1.0, 0.0)
    nobody = measures.movement(before, after, np.zeros(5, int), 5, [20, 100])
    assert nobody["cosine"] is None and nobody["words"] == 0


# --- similarity on seen pairs -------------------------------------------------------------


def test_seen_pair_filter_keeps_pairs_of_two_words_seen_k_times():
    vocab = Space("vocab", ["cat", "dog", "tiger", "car", "Paris"], np.eye(5))
    counts = np.array([5, 9, 4, 5, 7])
    pairs = pairs_of(
        [
            ("cat", "dog", 8.0),  # both seen >= 5: kept
            ("cat", "tiger", 7.0),  # tiger seen 4 times: out
            ("car", "zebra", 1.0),  # zebra has no row: out
            ("paris", "CAT", 2.0),  # case-folded lookup: Paris 7, cat 5: kept
            ("dog", "car", 3.0),  # kept
        ]
    )
    mask = measures.seen_pair_mask(vocab, counts, pairs, k=5)
    assert mask.tolist() == [True, False, False, True, True]
    assert measures.seen_pair_mask(vocab, counts, pairs, k=8).tolist() == [False] * 5


def test_seen_pair_scores_share_pairs_across_spaces_and_need_enough_of_them():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(41)]
    vectors = rng.normal(size=(41, 4))
    full = Space("full", words, vectors)
    lacking = Space("lacking", words[:-1], vectors[:-1])  # has no row for w40
    rows = [(f"w{i}", f"w{i + 1}", float(rng.uniform(0, 10))) for i in range(40)]
    pairs = pairs_of(rows)
    seen = np.ones(40, dtype=bool)
    seen[:5] = False  # 35 seen pairs, one of them (w39, w40) lacking in one space: 34

    scores = measures.seen_pair_scores({"full": full, "lacking": lacking}, pairs, seen, 30, 200, 0)
    assert {s.pairs for s in scores.values()} == {34}
    shared = seen.copy()
    shared[-1] = False
    first, second = vectors[5:39], vectors[6:40]
    cosines = (
        (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    )
    expected = stats.spearmanr(pairs.gold[shared], cosines).statistic
    full_score = scores["full"]
    assert full_score.spearman == pytest.approx(expected)
    assert scores["lacking"].spearman == pytest.approx(expected)  # same pairs, same vectors
    assert full_score.ci_low < full_score.spearman < full_score.ci_high
    assert full_score.status == "ok"
    again = measures.seen_pair_scores({"full": full}, pairs, shared, 30, 200, 0)["full"]
    assert (again.ci_low, again.ci_high) == (full_score.ci_low, full_score.ci_high)  # fixed seed

    too_few = measures.seen_pair_scores({"full": full}, pairs, shared, 35, 200, 0)["full"]
    assert too_few.as_dict() == {
        "spearman": None,
        "ci_low": None,
        "ci_high": None,
        "pairs": 34,
        "status": "too few pairs",
    }


def test_bootstrap_ci_of_a_perfect_ranking_is_one_and_of_ties_none():
    resampled = np.random.default_rng(1).integers(0, 50, size=(100, 50))
    gold = np.arange(50.0)
    assert measures.bootstrap_spearman_ci(gold, 2 * gold + 1, resampled) == (1.0, 1.0)
    assert measures.bootstrap_spearman_ci(gold, np.zeros(50), resampled) == (None, None)


# --- folds by word and the lexicon probes -------------------------------------------------


def test_folds_split_by_word_put_each_word_in_exactly_one_test_fold():
    words = ["good", "Good", "GOOD", "great", "fine", "nice", "bad", "Bad", "awful", "poor", "sad"]
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])

    folds = measures.word_folds(words, labels, folds=3, seed=0)

    assert len(folds) == 3
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(words)))  # each entry tested exactly once
    for train_rows, test_rows in folds:
        assert not {words[i].lower() for i in train_rows} & {words[i].lower() for i in test_rows}
        assert set(labels[test_rows]) == {0, 1}  # stratified
    fold_of = {i: f for f, (_, test) in enumerate(folds) for i in test}
    assert fold_of[0] == fold_of[1] == fold_of[2]  # good, Good, GOOD together
    assert fold_of[6] == fold_of[7]
    # two negative words (bad/Bad, awful) cannot fill three folds: two; one word: no folds
    assert len(measures.word_folds(words[:9], labels[:9], 3, 0)) == 2
    assert measures.word_folds(words[:8], labels[:8], 3, 0) == []
    assert measures.word_folds(["good", "bad"], np.array([1, 0]), 5, 0) == []


def test_lexicon_probe_scores_each_word_once_beside_the_majority_rate():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 30 + [0] * 10)
    words = [f"w{i}" for i in range(40)]
    separable = np.c_[labels * 4.0 + rng.normal(0, 0.1, 40), rng.normal(size=(40, 2))]
    folds = measures.word_folds(words, labels, 5, seed=0)

    score = measures.lexicon_probe(separable, labels, folds)
    assert score.as_dict() == {"accuracy": 1.0, "majority": 0.75, "words": 40}
    noise = measures.lexicon_probe(rng.normal(size=(40, 3)), labels, folds)
    assert noise.accuracy < 0.9 and noise.majority == 0.75
    assert measures.lexicon_probe(separable, labels, []).accuracy is None


def test_transfer_probe_fits_on_seen_words_and_scores_unseen_ones():
    labels = np.array([1, 1, 1, 0, 0, 0])
    seen = np.c_[labels * 2.0 - 1, [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]]
    unseen_labels = np.array([1, 0, 0, 0])
    unseen = np.array([[0.9, 5.0], [-0.8, -3.0], [-1.2, 0.0], [0.7, 0.0]])  # the last is wrong

    score = measures.transfer_probe(seen, labels, unseen, unseen_labels)
    assert score.as_dict() == {
        "accuracy": 0.75,
        "majority": 0.75,
        "train_words": 6,
        "test_words": 4,
    }
    assert measures.transfer_probe(seen, np.ones(6, int), unseen, unseen_labels).accuracy is None


# --- the perturbed test set ---------------------------------------------------------------


def toy_source() -> PretrainedVectors:
    """Angles on the circle: good 0, fine 10, nice 30, the 90, bad 180, awful 175, dire 200,
    sad 150; 'superb' is at 5 but the lexicon does not rate it."""
    degrees = {
        "good": 0,
        "superb": 5,
        "fine": 10,
        "nice": 30,
        "the": 90,
        "sad": 150,
        "awful": 175,
        "bad": 180,
        "dire": 200,
    }
    radians = np.deg2rad(list(degrees.values()))
    return PretrainedVectors("toy", list(degrees), np.c_[np.cos(radians), np.sin(radians)])


POLAR = {"good": 1, "fine": 1, "nice": 1, "bad": 0, "awful": 0, "dire": 0, "sad": 0}


def test_perturbed_test_set_swaps_seen_polar_words_for_unseen_neighbours_of_one_sign(tmp_path):
    train_tokens = [["good", "film"], ["bad", "film", "sad"], ["the", "nice"]]
    counts = measures.training_counts(train_tokens)
    vocab_words = ["<pad>", "<unk>", "good", "film", "bad", "sad", "the", "nice"]
    vocab_words += ["fine", "awful", "dire", "superb"]  # unseen rows (dev/test, lexicon words)
    test_tokens = [["good", "movie"], ["the", "bad", "bad"], ["zzz"], ["sad", "nice", "good"]]

    result = measures.perturb_test_set(test_tokens, counts, vocab_words, POLAR, toy_source())

    # good -> fine (10 degrees; superb at 5 is unrated), bad -> awful (5 degrees, not dire at
    # 20), sad -> awful (25 degrees; good-side words are never negative words' replacements),
    # nice -> fine (20 degrees away; good is seen, so it is no candidate)
    assert result.table == {"good": "fine", "bad": "awful", "sad": "awful", "nice": "fine"}
    assert result.tokens == [
        ["fine", "movie"],
        ["the", "awful", "awful"],
        ["zzz"],
        ["awful", "fine", "fine"],
    ]
    assert result.replaced.tolist() == [1, 2, 0, 3]
    assert result.swaps == {"good": 2, "bad": 2, "sad": 1, "nice": 1}
    replacements = set(result.table.values())
    assert not replacements & set(counts), "no replacement word may occur in training"
    assert all(POLAR[w] == POLAR[result.table[w]] for w in result.table)
    measures.write_replacements(tmp_path / "replacements.csv", result, counts, POLAR)
    lines = (tmp_path / "replacements.csv").read_text().splitlines()
    assert lines[0] == "word,training_count,polarity,replacement,test_tokens"
    assert lines[1:] == ["bad,1,0,awful,2", "good,1,1,fine,2", "nice,1,1,fine,1", "sad,1,0,awful,1"]


def test_perturbation_keeps_words_without_an_unseen_candidate_of_their_sign():
    counts = measures.training_counts([["good", "fine", "nice", "bad"]])
    vocab_words = ["<pad>", "<unk>", "good", "fine", "nice", "bad", "dire"]
    result = measures.perturb_test_set([["good", "bad"]], counts, vocab_words, POLAR, toy_source())
    assert result.table == {"bad": "dire"}  # every positive word was seen: good stays
    assert result.tokens == [["good", "dire"]]


# --- the lexicon file ---------------------------------------------------------------------


def test_vader_lexicon_is_read_from_the_installed_package():
    vader = lexicon.load_lexicon(None)
    assert vader.path.name == "vader_lexicon.txt" and len(vader.ratings) > 7000
    polar = vader.polar(0.5)
    assert polar["good"] == 1 and polar["horrible"] == 0
    assert "fed up" not in vader.ratings  # multi-word entries never match a token
    assert "143" not in vader.ratings and ":)" not in vader.ratings  # no letter: left out
    assert all(abs(vader.ratings[w]) >= 0.5 for w in polar)


def test_polarity_is_the_sign_of_the_mean_rating_above_a_threshold(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("Good\t1.9\t0.9\t[2, 2]\nmeh\t-0.3\t0.5\t[0, -1]\nbad\t-2.5\t0.5\t[]\n:(\t-2\n")
    rated = lexicon.read_lexicon(path)
    assert rated.ratings == {"good": 1.9, "meh": -0.3, "bad": -2.5}
    assert rated.polar(0.5) == {"good": 1, "bad": 0}
    assert rated.polar(0.0) == {"good": 1, "meh": 0, "bad": 0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("good\t1.9\nbad\n", r"lexicon.txt: line 2: expected token<TAB>mean rating"),
        ("good\tvery\n", r"lexicon.txt: line 1: rating 'very' is not a number"),
        ("\n", r"lexicon.txt: no lexicon entries"),
    ],
)
def test_malformed_lexicon_lines_are_named(tmp_path, text, message):
    path = tmp_path / "lexicon.txt"
    path.write_text(text)
    with pytest.raises(EmbcompareError, match=message):
        lexicon.read_lexicon(path)


def test_missing_lexicon_file_names_the_config_key(tmp_path):
    with pytest.raises(EmbcompareError, match=r"semantic.lexicon.path=.*absent.txt"):
        lexicon.load_lexicon(tmp_path / "absent.txt")


# --- one real run -------------------------------------------------------------------------

NEW_KEYS = [
    "init_scale",
    "init_half_width",
    "movement_cosine",
    "movement_relative_change",
    "movement_words",
    "movement_cosine_seen5to19",
    "movement_relative_change_seen20to99",
    "movement_words_seen100plus",
    "ws353_seen_pairs",
    "ws353_seen_status",
    "ws353_seen_spearman",
    "ws353_seen_spearman_ci_low",
    "simlex999_seen_spearman_source_ci_high",
    "simlex999_seen_spearman_delta",
    "lexicon_probe_accuracy",
    "lexicon_probe_accuracy_before",
    "lexicon_probe_accuracy_source",
    "lexicon_probe_majority",
    "lexicon_probe_words",
    "transfer_probe_accuracy",
    "transfer_probe_accuracy_source",
    "transfer_probe_majority",
    "transfer_probe_train_words",
    "transfer_probe_test_words",
    "perturbed_test_accuracy",
    "perturbed_agreement",
    "perturbed_tokens_replaced",
    "perturbed_sentences_changed",
    "perturbed_replacement_words",
    "trainlabel_probe_accuracy",
    "trainlabel_probe_majority",
]


@pytest.mark.slow
def test_a_small_sst2_run_records_the_new_measures(tmp_path, data_dir, mirror):
    result = run_cli(
        "run",
        "dataset=sst2",
        "model=bow",
        "setup=rand",
        "train.n=200",
        "train.epochs=2",
        "train.min_steps=0",
        "train.progress=false",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = tmp_path.glob("*/runs/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert [k for k in NEW_KEYS if k not in metrics] == []
    assert "probe_accuracy" not in metrics  # renamed: trainlabel_probe_accuracy
    assert (metrics["init_scale"], metrics["init_half_width"]) == ("keras", 0.05)
    # 200 SST-2 sentences hold no WS-353 pair of two words seen 5 times
    assert metrics["ws353_seen_status"] == "too few pairs"
    assert metrics["ws353_seen_spearman"] is None and metrics["ws353_seen_pairs"] < 30
    assert (
        0
        < metrics["movement_words"]
        == sum(
            metrics[f"movement_words_{band}"] for band in ("seen5to19", "seen20to99", "seen100plus")
        )
    )
    assert -1 <= metrics["movement_cosine"] < 1 and metrics["movement_relative_change"] > 0
    assert metrics["perturbed_tokens_replaced"] >= metrics["perturbed_sentences_changed"] > 0
    assert 0 <= metrics["perturbed_agreement"] <= 1
    assert metrics["transfer_probe_test_words"] > 1000  # lexicon words get rows
    assert all(np.isscalar(v) or v is None for v in metrics.values())  # flat for runs.parquet
    swaps = (metrics_file.parent / "replacements.csv").read_text().splitlines()
    assert len(swaps) == 1 + metrics["perturbed_replacement_words"]
    semantic = json.loads((metrics_file.parent / "semantic.json").read_text())
    assert set(semantic["seen_pairs"]["ws353"]) == {"source", "channel_0", "channel_0_delta"}


@pytest.mark.slow
def test_a_bad_init_scale_on_the_command_line_is_one_error_line(tmp_path, data_dir, mirror):
    result = run_cli(
        "run",
        "dataset=sst2",
        "setup=rand",
        "setup.channels.0.init_scale=huge",
        "train.n=50",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path}",
    )
    assert result.returncode == 2
    assert last_error_line(result.stderr) == (
        "embcompare: error: setup.channels.0 init_scale='huge' must be one of "
        "['keras', 'variance_matched'] or a positive number"
    )
    assert not list(tmp_path.glob("*/runs/*/metrics.json"))
