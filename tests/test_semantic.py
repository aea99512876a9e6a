"""Semantic evaluation: equality with gensim on the real benchmarks, OOV and coverage, common
subsets, analogies, neighbours, drift, the polarity probe, bad files and the evaluate command."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from embcompare import run
from embcompare.analysis import semantic, similarity
from embcompare.analysis import word_benchmarks as benchmarks
from embcompare.data.fetch import sha256_of
from embcompare.data.text import Vocabulary
from embcompare.errors import EmbcompareError
from embcompare.vectors.pretrained import PretrainedVectors, load_pretrained

from conftest import CONF, last_error_line, load_conf, run_cli

# GloVe 6B 50d, full 400k vocabulary, case-insensitive, OOV pairs skipped (gensim's numbers)
GLOVE_EXPECTED = {"ws353": 0.5033, "simlex999": 0.2646, "men": 0.6523, "rw": 0.3403}


@pytest.fixture(scope="module")
def bench_cfg(data_dir, mirror):
    """The parts of the run config that the benchmark readers use, on the test data dir."""
    return OmegaConf.create(
        {
            "similarity": load_conf("similarity", "default"),
            "probe": load_conf("probe", "default"),
            "semantic": OmegaConf.load(CONF / "config.yaml").semantic,
            "paths": {"data_dir": str(data_dir), "mirror": str(mirror)},
        }
    )


@pytest.fixture(scope="module")
def glove(tmp_path_factory) -> PretrainedVectors:
    cache = tmp_path_factory.mktemp("cache")
    return load_pretrained(load_conf("embedding", "glove-6b-50d"), cache)


@pytest.fixture(scope="module")
def glove_kv(glove):
    return glove.to_keyedvectors()


def space(words, vectors, lowercase=True, name="s") -> similarity.Space:
    return similarity.Space(name, list(words), np.asarray(vectors, dtype=np.float32), lowercase)


def write_pairs(path: Path, rows) -> Path:
    path.write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows))
    return path


# --- equality with gensim -----------------------------------------------------------------


@pytest.mark.parametrize("restrict", [None, 300_000])
def test_similarity_equals_gensim_on_every_real_benchmark(bench_cfg, glove, glove_kv, restrict):
    """Full vocabulary is our policy; gensim's default restrict_vocab=300000 is matched too."""
    pairs_by_name, _ = benchmarks.load_benchmarks(bench_cfg)
    vectors = similarity.Space("glove", glove.words, glove.vectors).head(restrict)
    for name, pairs in pairs_by_name.items():
        ours = similarity.score_similarity(vectors, pairs)
        _, gensim_rho, oov_percent = glove_kv.evaluate_word_pairs(
            str(pairs.path), restrict_vocab=restrict or len(glove_kv)
        )
        assert ours.spearman == pytest.approx(gensim_rho.statistic, abs=1e-9), name
        assert 100 * (1 - ours.coverage) == pytest.approx(oov_percent, abs=1e-9), name
        if restrict is None and name in GLOVE_EXPECTED:
            assert round(ours.spearman, 4) == GLOVE_EXPECTED[name]
    if restrict is None:
        rw = similarity.score_similarity(vectors, pairs_by_name["rw"])
        assert (rw.scored, rw.total, round(100 * (1 - rw.coverage), 1)) == (1782, 2034, 12.4)


def test_analogies_equal_gensim_on_the_first_5000_glove_words(bench_cfg, glove, glove_kv):
    _, analogies = benchmarks.load_benchmarks(bench_cfg)
    ours = similarity.score_analogies(
        similarity.Space("glove", glove.words, glove.vectors), analogies, 5000
    )
    accuracy, sections = glove_kv.evaluate_word_analogies(str(analogies.path), restrict_vocab=5000)
    total = sections[-1]
    result = ours.as_dict()
    assert result["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert result["correct"] == len(total["correct"])
    assert result["answered"] == len(total["correct"]) + len(total["incorrect"])
    assert result["total"] == 19544


# --- word similarity on small known vectors ----------------------------------------------


def test_oov_pairs_are_skipped_counted_and_case_folded(tmp_path):
    vectors = space(["Cat", "dog", "car", "cat"], [[1, 0], [1, 1], [0, 1], [-1, 0]])
    pairs = benchmarks.read_word_pairs(
        write_pairs(
            tmp_path / "p.txt",
            [("CAT", "dog", 9), ("cat", "car", 1), ("dog", "car", 5), ("cat", "zebra", 3)],
        ),
        "p",
    )
    folded = similarity.score_similarity(vectors, pairs)
    assert (folded.scored, folded.total, folded.coverage) == (3, 4, 0.75)
    assert folded.as_dict()["oov_pairs"] == 1
    # 'cat' and 'CAT' find the first case variant, 'Cat' = [1, 0]: cosines 0.707, 0, 0.707
    first, second, known = similarity.pair_rows(vectors, pairs)
    assert first.tolist()[:2] == [0, 0] and known.tolist() == [True, True, True, False]
    exact = similarity.score_similarity(
        space(vectors.words, vectors.vectors, lowercase=False), pairs
    )
    assert (exact.scored, exact.spearman) == (2, None)  # 'CAT' is unknown; 2 pairs: no rho


def test_spearman_is_rank_correlation_of_cosines(tmp_path):
    angles = np.deg2rad([0, 10, 30, 60, 100])
    vectors = space("abcde", np.c_[np.cos(angles), np.sin(angles)])
    rows = [("a", "b", 4), ("a", "c", 3), ("a", "d", 2), ("a", "e", 1), ("b", "a", 0)]
    score = similarity.score_similarity(
        vectors, benchmarks.read_word_pairs(write_pairs(tmp_path / "p.txt", rows), "p")
    )
    # ranks of cosine: b-a and a-b tie at the top; gold ranks them first and last
    assert score.spearman == pytest.approx(
        np.corrcoef([4.5, 3, 2, 1, 4.5], [5, 4, 3, 2, 1])[0, 1], abs=1e-12
    )


def test_common_subset_scores_each_space_on_the_pairs_all_cover(tmp_path):
    rng = np.random.default_rng(0)
    everything = [f"w{i}" for i in range(8)]
    full = rng.normal(size=(8, 5))
    spaces = {
        "all": space(everything, full),
        "no_w7": space(everything[:7], full[:7]),
        "no_w0": space(everything[1:], full[1:] + 0.3),
    }
    rows = [
        (f"w{i}", f"w{j}", float(rng.uniform(0, 10))) for i in range(8) for j in range(i + 1, 8)
    ]
    pairs = benchmarks.read_word_pairs(write_pairs(tmp_path / "p.txt", rows), "p")
    shared = [k for k, (a, b, _) in enumerate(rows) if {a, b}.isdisjoint({"w0", "w7"})]

    common = similarity.common_subset_scores(spaces, pairs)

    subset = benchmarks.read_word_pairs(
        write_pairs(tmp_path / "s.txt", [rows[k] for k in shared]), "s"
    )
    for name, vectors in spaces.items():
        assert common[name].scored == len(shared) == 15 and common[name].total == 28
        alone = similarity.score_similarity(vectors, subset)
        assert common[name].spearman == pytest.approx(alone.spearman, abs=1e-12)
    assert similarity.score_similarity(spaces["all"], pairs).scored == 28
    assert similarity.score_similarity(spaces["no_w7"], pairs).scored == 21


# --- analogies ----------------------------------------------------------------------------


def analogy_space() -> similarity.Space:
    """man/woman/king/queen on exact offsets (gender g, royalty r), plus distractors."""
    man, g, r = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0]), np.array([0, 0, 1.0, 0])
    rows = {
        "man": man,
        "woman": man + g,
        "king": man + r,
        "queen": man + g + r,
        "boy": man + 0.5 * np.array([0, 0, 0, 1.0]),
        "girl": man + g + 0.5 * np.array([0, 0, 0, 1.0]),
        "apple": np.array([0, 0, 0, 1.0]),
    }
    return space(rows, list(rows.values()))


def test_analogies_3cosadd_on_a_constructed_set(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(
        ": family\n"
        "man woman king queen\n"  # exact offset: right
        "Man Woman boy girl\n"  # case-folded: right
        "man king woman queen\n"  # right
        "man woman king apple\n"  # wrong: the answer is queen
        "man woman king unicorn\n"  # unknown word: skipped
        ": gram-plural\n"
        "man man king king\n"  # inputs are excluded, so 'king' cannot be the answer: wrong
    )
    result = similarity.score_analogies(
        analogy_space(), benchmarks.read_analogies(path), None
    ).as_dict()
    assert (result["correct"], result["answered"], result["total"]) == (3, 5, 6)
    assert result["accuracy"] == pytest.approx(3 / 5) and result["coverage"] == pytest.approx(5 / 6)
    assert result["sections"]["family"] == {"correct": 3, "answered": 4, "total": 5}
    assert result["semantic_accuracy"] == pytest.approx(3 / 4) and result["syntactic_accuracy"] == 0

    first_four = similarity.score_analogies(analogy_space(), benchmarks.read_analogies(path), 4)
    assert first_four.as_dict()["answered"] == 3  # boy, girl and apple are beyond the first 4


def test_case_variants_group_every_spelling_under_the_first_row():
    words = ["good", "Good", "fine", "GOOD", "Fine", "bad"]
    folded = space(words, np.eye(6))
    assert folded.variants == {0: [0, 1, 3], 2: [2, 4]}
    assert folded.has_variants.tolist() == [True, False, True, False, False, False]
    assert folded.rows_of(["GOOD", "fine", "BAD", "ok"]).tolist() == [0, 2, 5, -1]
    exact = space(words, np.eye(6), lowercase=False)
    assert exact.variants == {} and not exact.has_variants.any()
    assert exact.rows_of(["GOOD", "good", "Bad"]).tolist() == [3, 0, -1]


# --- neighbours and drift -----------------------------------------------------------------


def test_neighbours_are_ranked_by_cosine_without_the_word_itself():
    angles = np.deg2rad([0, 5, 20, 80, 180])
    vectors = space(["good", "fine", "Good", "meh", "bad"], np.c_[np.cos(angles), np.sin(angles)])
    found = similarity.nearest_neighbours(vectors, ["good", "meh", "unknown"], 3)
    assert set(found) == {"good", "meh"}
    # 'Good' is a case variant of 'good': left out like the word itself
    assert [w for w, _ in found["good"]] == ["fine", "meh", "bad"]
    assert found["good"][0][1] == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)
    # from meh (80 degrees): Good at 60, fine at 75, good at 80; bad at 100 comes last
    assert [w for w, _ in found["meh"]] == ["Good", "fine", "good"]


def test_drift_separates_seen_and_unseen_words_and_overlap_is_jaccard():
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(12)]
    before = rng.normal(size=(12, 6))
    after = before.copy()
    after[:4] = -before[:4]  # seen words 0-3 flip: cosine -1
    after[4:6] = before[4:6] * 3  # seen words 4-5 only grow: cosine 1
    seen = np.arange(12) < 6
    cfg = OmegaConf.create(
        {"probe": {"words": ["w0", "w9", "nope"], "k": 3}, "semantic": {"overlap_words": 5}}
    )

    report = semantic.drift_report(space(words, before), space(words, after), seen, cfg)

    assert report["seen_cosine"] == pytest.approx((4 * -1 + 2 * 1) / 6, abs=1e-6)
    assert report["unseen_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert (report["seen_words"], report["unseen_words"], report["frequent_words"]) == (6, 6, 5)
    assert set(report["probe_jaccard_by_word"]) == {"w0", "w9"}
    same = similarity.neighbourhood_overlap(space(words, before), space(words, before), [0, 1], 3)
    assert same.tolist() == [1.0, 1.0]
    # one of three neighbours shared: |{a}| / |{a, b, c, d, e}| = 1/5
    line = space("xabcde", [[1, 0], [1, 0.1], [1, 0.2], [1, 0.3], [1, -0.4], [1, -0.5]])
    moved = space("xabcde", [[1, 0], [1, 0.1], [1, 5], [1, 6], [1, -0.2], [1, -0.3]])
    assert similarity.neighbourhood_overlap(line, moved, [0], 3).tolist() == [pytest.approx(0.2)]


# --- polarity probe -----------------------------------------------------------------------


def test_polar_words_keep_frequent_clearly_associated_words():
    positive = [["great", "film", "the"]] * 6
    negative = [["awful", "film", "the"]] * 6 + [["great", "rare"]]
    words, labels = similarity.polar_words(positive + negative, [1] * 6 + [0] * 7, 5, 1.0, 1.0)
    assert dict(zip(words, labels.tolist(), strict=True)) == {"awful": 0, "great": 1}


def test_probe_accuracy_is_cross_validated_and_none_without_two_classes():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 20)
    separable = np.c_[labels * 4.0 + rng.normal(0, 0.1, 40), rng.normal(size=(40, 3))]
    assert similarity.probe_accuracy(separable, labels, 5, seed=0) == 1.0
    assert similarity.probe_accuracy(separable, np.zeros(40, int), 5, seed=0) is None
    assert similarity.probe_accuracy(separable[:3], np.array([0, 1, 1]), 5, seed=0) is None


# --- inside a run -------------------------------------------------------------------------


def test_evaluate_run_writes_its_files_and_returns_the_headline(tmp_path, bench_cfg):
    tokens = [["good", "fun", "film"]] * 6 + [["bad", "dull", "film"]] * 6
    labels = np.array([1] * 6 + [0] * 6)
    vocab = Vocabulary.build(tokens, extra=["king", "queen", "man", "woman", "cat", "tiger"])
    rng = np.random.default_rng(0)
    source = PretrainedVectors("toy", list(vocab.words[2:]), rng.normal(size=(len(vocab) - 2, 8)))
    before = np.vstack([np.zeros((2, 8)), source.vectors]).astype(np.float32)
    after = before.copy()
    after[2:7] += rng.normal(0, 0.5, (5, 8))  # the five training words move
    cfg = OmegaConf.merge(
        bench_cfg,
        {"seed": 0, "setup": {"channels": [{"init": "pretrained", "trainable": True}]}},
        {"semantic": {"polarity": {"min_count": 5}}},
    )

    numbers = semantic.evaluate_run(cfg, vocab, source, [before], [after], tokens, labels, tmp_path)

    report = json.loads((tmp_path / "semantic.json").read_text())
    assert numbers["drift_unseen_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert numbers["drift_seen_cosine"] < 1.0
    assert numbers["ws353_coverage"] == pytest.approx(
        report["similarity"]["spaces"]["channel_0"]["ws353"]["coverage"]
    )
    assert 0 < numbers["ws353_coverage"] < 0.05  # king/queen, tiger/cat, man/woman at most
    assert numbers["trainlabel_probe_words"] == 4  # good, fun, bad, dull (film: both classes)
    # all five training words are seen >= 5 times (film 12, the others 6) and moved
    moved = similarity.row_cosines(before[2:7], after[2:7])
    assert numbers["movement_words"] == numbers["movement_words_seen5to19"] == 5
    assert numbers["movement_cosine"] == pytest.approx(moved.mean())
    assert numbers["ws353_seen_status"] == "too few pairs"  # no benchmark pair of seen words
    # VADER rates good and fun positive, bad and dull negative; film is not rated
    assert (numbers["lexicon_probe_words"], numbers["lexicon_probe_majority"]) == (4, 0.5)
    assert set(report["trainlabel_probe"]["channels"]["channel_0"]) == {"before", "after"}
    with open(tmp_path / "neighbours.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["stage"], r["word"]) for r in rows} == {
        ("before", "good"),
        ("after", "good"),
        ("before", "bad"),
        ("after", "bad"),
    }
    assert json.dumps(numbers)  # flat and serialisable for metrics.json


def test_unknown_headline_benchmark_is_a_config_error(tmp_path, bench_cfg):
    cfg = OmegaConf.merge(bench_cfg, {"semantic": {"headline": ["simlex"]}})
    with pytest.raises(EmbcompareError, match=r"semantic.headline: 'simlex' is not a benchmark"):
        semantic.evaluate_run(cfg, None, None, [], [], [], [], tmp_path)


def test_benchmark_words_become_rows_only_when_asked(bench_cfg, glove):
    cfg = OmegaConf.merge(
        bench_cfg, {"vocab": {"add_eval_words": False, "add_benchmark_words": False}}
    )
    assert run._extra_words(cfg, glove, [["tiger"]]) == []
    cfg.vocab.add_benchmark_words = True
    extra = run._extra_words(cfg, glove, [])
    assert {"tiger", "arafat", "athens"} <= set(extra)  # lowercased, as the policy says
    assert all(glove.row_of(w) is not None for w in extra)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("love\tsex\tabc", "line 7: score 'abc' is not a number"),
        ("love\tsex", "line 7: expected word1<TAB>word2<TAB>score"),
        ("\tsex\t5", "line 7: expected word1<TAB>word2<TAB>score"),
        ("love\tsex\tnan", "line 7: score 'nan' is not finite"),
    ],
)
def test_malformed_pair_rows_name_file_and_line(tmp_path, line, message):
    good = [f"a{i}\tb{i}\t{i}\r\n" for i in range(6)]
    path = tmp_path / "EN-WS-353-ALL.txt"
    path.write_text("".join(good) + line + "\r\n", newline="")
    with pytest.raises(EmbcompareError) as caught:
        benchmarks.read_word_pairs(path, "ws353")
    assert f"EN-WS-353-ALL.txt: {message}" in str(caught.value)


def test_malformed_analogy_rows_name_file_and_line(tmp_path):
    path = tmp_path / "questions-words.txt"
    path.write_text(": capitals\nAthens Greece Baghdad Iraq\nAthens Greece Bangkok\n")
    with pytest.raises(EmbcompareError, match=r"questions-words.txt: line 3: expected 4 words"):
        benchmarks.read_analogies(path)


def test_vectors_format_is_told_by_extension_and_header(tmp_path):
    (tmp_path / "g.txt").write_text("the 0.1 0.2\n")
    (tmp_path / "w.txt").write_text("1 2\nthe 0.1 0.2\n")
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "vectors.npy", np.zeros((1, 2)))
    expected = {"g.txt": "glove_text", "w.txt": "word2vec_text", "d": "npy_words"}
    for name, file_format in expected.items():
        assert semantic.resolve_vectors(str(tmp_path / name))["format"] == file_format
    assert semantic.vectors_format(Path("x.bin")) == "word2vec_binary"
    assert semantic.vectors_format(Path("x.vec")) == "fasttext_vec"
    with pytest.raises(EmbcompareError, match="cannot tell the format"):
        semantic.vectors_format(tmp_path / "g.csv")
    assert semantic.resolve_vectors("glove-6b-50d")["format"] == "npy_parquet"


# --- the evaluate command -----------------------------------------------------------------


@pytest.mark.slow
def test_cli_evaluate_glove_prints_gensim_numbers(tmp_path, data_dir, mirror):
    env = {"EMBCOMPARE_DATA": str(data_dir), "DATA_MIRROR": str(mirror)}
    result = run_cli("evaluate", "vectors=glove-6b-50d", f"paths.results_dir={tmp_path}", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    table = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    for name, rho in GLOVE_EXPECTED.items():
        assert table[name][1] == f"{rho:.4f}"
    assert table["rw"][2:] == ["1782/2034", "12.4"]
    assert "analogies (3CosAdd, first 30000 words): accuracy 0.4969" in result.stdout
    written = tmp_path / "evaluate" / "runs" / "glove-6b-50d" / "semantic.json"
    assert f"wrote {written}" in result.stdout
    assert json.loads(written.read_text())["similarity"]["simlex999"]["scored"] == 999


def test_cli_evaluate_errors_are_one_line_and_exit_2(tmp_path, mirror):
    data = tmp_path / "data"
    (data / "similarity").mkdir(parents=True)
    bad = data / "similarity" / "bad.txt"
    bad.write_text("tiger\tcat\t7.35\nlove\tsex\tabc\n")
    env = {"EMBCOMPARE_DATA": str(data), "DATA_MIRROR": str(mirror)}
    common = [f"paths.results_dir={tmp_path}", "vectors=glove-6b-50d"]
    malformed = run_cli(
        "evaluate",
        *common,
        "similarity.benchmarks.ws353.path=similarity/bad.txt",
        f"similarity.benchmarks.ws353.sha256={sha256_of(bad)}",
        env=env,
    )
    assert malformed.returncode == 2
    assert last_error_line(malformed.stderr).endswith(
        "bad.txt: line 2: score 'abc' is not a number"
    )

    missing = run_cli(
        "evaluate", f"paths.results_dir={tmp_path}", "vectors=no-such-vectors", env=env
    )
    assert missing.returncode == 2
    assert "vectors='no-such-vectors' is neither a config" in last_error_line(missing.stderr)
