"""GloVe in Keras: co-occurrence counts, the loss, the AdaGrad step, and the cross-check against
mittens, an independent GloVe."""

import dataclasses
import importlib.util
import json
import math

import numpy as np
import pytest
import scipy.sparse

from embcompare.config import compose
from embcompare.data.corpus import read_corpus
from embcompare.errors import EmbcompareError
from embcompare.vectors.pretraining.command import similarity_scores
from embcompare.vectors.pretraining.cooccurrence import count_cooccurrences, top_words
from embcompare.vectors.pretraining.corpus import PAD_ID, encode_corpus
from embcompare.vectors.pretraining.engines import (
    check_mittens_memory,
    import_numpy_mittens,
    train_keras_glove,
    train_mittens_glove,
)
from embcompare.vectors.pretraining.glove import (
    Entries,
    GloveTables,
    SparseAdagrad,
    build_glove_model,
    entry_batches,
    glove_loss,
    glove_objective,
    nonzero_entries,
)
from embcompare.vectors.pretraining.settings import settings_from

from conftest import last_error_line, run_cli

# --- co-occurrence counts ------------------------------------------------------------------


@pytest.mark.parametrize("chunk_tokens", [1, 2, 3, 1000])
def test_counts_weigh_each_pair_by_one_over_distance_in_both_directions(chunk_tokens):
    # ids by falling count, ties alphabetical: a=1, b=2, c=3
    corpus = encode_corpus([["a", "b", "a", "c"], ["b", "c"]], min_count=1)
    assert corpus.words == ["a", "b", "c"]
    counts = count_cooccurrences(corpus, window=2, chunk_tokens=chunk_tokens).toarray()
    # document 1, distance 1: (a,b) (b,a) (a,c), 1 each; distance 2: (a,a) (b,c), 1/2 each;
    # document 2: (b,c), 1. No pair spans the two documents (c then b).
    # Each pair counts in both directions, so a beside itself adds 2 x 1/2 to X[a, a].
    expected = np.array(
        [
            [0, 0, 0, 0],
            [0, 1.0, 1 + 1, 1],
            [0, 1 + 1, 0, 0.5 + 1],
            [0, 1, 0.5 + 1, 0],
        ]
    )
    np.testing.assert_array_equal(counts, expected)


def test_counts_stop_at_the_window_and_skip_dropped_rare_words():
    # "x" occurs once: min_count=2 drops it, so the two a's become neighbours, as in glove.c
    corpus = encode_corpus([["a", "b", "x", "a", "b"]], min_count=2)
    counts = count_cooccurrences(corpus, window=1).toarray()
    a, b = 1, 2
    # a b a b at distance 1 only: (a,b) twice and (b,a) once, each in both directions
    assert counts[a, b] == counts[b, a] == 3.0
    assert counts[a, a] == counts[b, b] == 0.0


def test_top_words_keeps_the_most_frequent_rows_and_columns():
    corpus = encode_corpus([["a", "a", "a", "b", "b", "c"]], min_count=1)
    counts = count_cooccurrences(corpus, window=2)
    kept = top_words(counts, 2)
    assert kept.shape == (3, 3)
    np.testing.assert_array_equal(kept.toarray(), counts.toarray()[:3, :3])
    assert top_words(counts, None) is counts and top_words(counts, 10) is counts


# --- the loss -------------------------------------------------------------------------------


def three_word_tables() -> GloveTables:
    """Fixed weights for words 1..3 of a 2-d model; row 0 is padding."""
    return GloveTables(
        word_vectors=np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32),
        context_vectors=np.array([[0, 0], [0.5, 0], [1, -1], [0, 2]], np.float32),
        word_biases=np.array([[0], [0], [1], [0]], np.float32),
        context_biases=np.array([[0], [0.5], [0], [0]], np.float32),
    )


def test_loss_is_the_weighted_least_squares_worked_out_by_hand():
    counts = scipy.sparse.csr_matrix(
        np.array([[0, 0, 0, 0], [0, 0, 100, 1], [0, 100, 200, 0], [0, 1, 0, 0]], np.float64)
    )
    entries = nonzero_entries(counts, x_max=100, alpha=0.75)
    model = build_glove_model(rows=4, dim=2, seed=0)
    three_word_tables().assign_to(model)
    # prediction w_i . w~_j + b_i + b~_j, error against log X_ij, weight f(X_ij):
    #   (1,2): 1 + 0 + 0 = 1,       log 100,  f = 1            -> (1 - 4.60517)^2  = 12.99725
    #   (1,3): 0 + 0 + 0 = 0,       log 1 = 0                  -> 0
    #   (2,1): 0 + 1 + 0.5 = 1.5,   log 100,  f = 1            -> (1.5 - 4.60517)^2 = 9.64208
    #   (2,2): -1 + 1 + 0 = 0,      log 200,  f = 1 (capped)   -> 5.29832^2        = 28.07217
    #   (3,1): 0.5 + 0 + 0.5 = 1,   log 1 = 0, f = 0.01^0.75   -> 0.0316228 x 1    = 0.03162
    # J = (12.99725 + 9.64208 + 28.07217 + 0.03162) / 2
    expected = 25.3715618
    assert float(glove_loss(model, entries)) == pytest.approx(expected, rel=1e-6)
    assert glove_objective(entries, three_word_tables()) == pytest.approx(expected, rel=1e-6)
    pairs = list(zip(entries.rows, entries.columns, strict=True))
    f = dict(zip(pairs, entries.weights, strict=True))
    assert f[(1, 3)] == pytest.approx(math.pow(0.01, 0.75)) and f[(2, 2)] == 1.0


# --- the AdaGrad step ----------------------------------------------------------------------


def numpy_adagrad(table, accumulator, gradient, learning_rate):
    new_accumulator = accumulator + gradient**2
    return table - learning_rate * gradient / np.sqrt(new_accumulator), new_accumulator


@pytest.mark.parametrize("jit_compile", [False, True])
def test_one_adagrad_step_moves_exactly_the_batch_rows_as_numpy_computes(jit_compile):
    rows, dim, rate, start = 6, 3, 0.05, 0.1
    model = build_glove_model(rows, dim, seed=3)
    before = GloveTables.of(model)
    step = SparseAdagrad(model, rate, start, jit_compile)
    # words 1 and 4 repeat (a word's gradients are summed before squaring); three padding
    # entries of weight 0 make the batch (8) longer than the tables (6 rows)
    batch = Entries(
        rows=np.array([1, 1, 4, 4, 1, PAD_ID, PAD_ID, PAD_ID], np.int32),
        columns=np.array([2, 5, 2, 5, 4, PAD_ID, PAD_ID, PAD_ID], np.int32),
        log_counts=np.log(np.array([3, 1.5, 2, 8, 1, 1, 1, 1], np.float32)),
        weights=np.array([0.5, 0.2, 1.0, 0.3, 0.7, 0, 0, 0], np.float32),
    )
    loss = step(batch)
    after = GloveTables.of(model)

    w, c, b, bc = (t.astype(np.float64) for t in before.as_tuple())
    r, j = batch.rows, batch.columns
    errors = (w[r] * c[j]).sum(1) + b[r, 0] + bc[j, 0] - batch.log_counts
    assert loss == pytest.approx(0.5 * np.sum(batch.weights * errors**2), rel=1e-5)
    scaled = batch.weights * errors  # dJ / d prediction
    gradients = [np.zeros_like(t) for t in (w, c, b, bc)]
    np.add.at(gradients[0], r, scaled[:, None] * c[j])
    np.add.at(gradients[1], j, scaled[:, None] * w[r])
    np.add.at(gradients[2], r, scaled[:, None])
    np.add.at(gradients[3], j, scaled[:, None])
    moved_rows = [{1, 4}, {2, 4, 5}, {1, 4}, {2, 4, 5}]
    for number, (old, new, gradient, moved) in enumerate(
        zip((w, c, b, bc), after.as_tuple(), gradients, moved_rows, strict=True)
    ):
        expected, accumulator = numpy_adagrad(old, np.full_like(old, start), gradient, rate)
        np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(step.accumulators[number].numpy(), accumulator, rtol=1e-5)
        changed = set(np.flatnonzero((new != old.astype(np.float32)).any(axis=1)))
        assert changed == moved  # the padding row (weight 0) and unused words stay put


def test_batches_cover_every_entry_once_and_pad_with_weight_zero():
    counts = scipy.sparse.random(30, 30, density=0.3, random_state=0, format="csr") * 50
    entries = nonzero_entries(counts, x_max=100, alpha=0.75)
    batches = list(entry_batches(entries, 16, np.random.default_rng(0)))
    assert all(len(batch) == 16 for batch in batches)
    real = [
        (row, column)
        for batch in batches
        for row, column, weight in zip(batch.rows, batch.columns, batch.weights, strict=True)
        if weight > 0
    ]
    assert sorted(real) == sorted(zip(entries.rows, entries.columns, strict=True))
    padding = len(batches) * 16 - len(entries)
    assert 0 <= padding < 16
    assert sum(int((batch.weights == 0).sum()) for batch in batches) == padding


# --- settings, configs and the mittens engine ----------------------------------------------


def test_glove_settings_leave_word2vec_ones_out_of_the_cache_key():
    glove = settings_from(compose("pretrain", ["method=keras_glove"]))
    assert (glove.arch, glove.window, glove.learning_rate) == ("glove", 10, 0.2)
    assert (glove.x_max, glove.alpha, glove.initial_accumulator) == (100.0, 0.75, 0.1)
    assert glove.sg is None and glove.negative is None and glove.sample is None
    unused = settings_from(compose("pretrain", ["method=keras_glove", "negative=15"]))
    assert unused == glove  # a word2vec setting does not make GloVe's cache stale
    mittens = settings_from(compose("pretrain", ["method=mittens_glove"]))
    assert mittens.batch_size is None and mittens.initial_accumulator is None
    assert mittens.max_words == 5000
    sgns = settings_from(compose("pretrain", ["method=keras_sgns", "x_max=50"]))
    assert sgns.x_max is None and sgns.negative == 5


def test_mittens_refuses_a_dense_matrix_over_its_memory_bound():
    check_mittens_memory(5000, limit_gib=4)  # 9 x 5000^2 float64: 1.7 GiB
    with pytest.raises(EmbcompareError, match=r"max_words=20000: .* 26\.8 GiB, over .*=4"):
        check_mittens_memory(20000, limit_gib=4)
    with pytest.raises(EmbcompareError, match="needs max_words"):
        check_mittens_memory(None, limit_gib=4)


def test_a_too_large_mittens_matrix_is_one_error_line_before_any_reading(tmp_path):
    result = run_cli(
        "pretrain", "method=mittens_glove", "max_words=100000", f"paths.cache_dir={tmp_path}"
    )
    assert result.returncode == 2
    error = last_error_line(result.stderr)
    assert "max_words=100000" in error and "use max_words<=7723" in error
    assert "reading corpus" not in result.stderr


def test_mittens_is_imported_without_turning_eager_execution_off():
    import tensorflow as tf

    glove_class = import_numpy_mittens()
    assert glove_class.__module__ == "mittens.np_mittens"
    # `import mittens` itself would run tf.compat.v1.disable_eager_execution()
    assert tf.executing_eagerly()


def test_without_mittens_the_error_says_what_to_install(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mittens" else find_spec(name)
    )
    with pytest.raises(EmbcompareError, match=r"needs the mittens package: pip install"):
        import_numpy_mittens()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["keras_glove", "mittens_glove"])
def test_pretrain_glove_writes_vectors_and_reports_the_counts(method, data_dir, mirror, tmp_path):
    overrides = [
        "corpus=wikitext2",
        "max_tokens=60000",
        "dim=16",
        "epochs=3",
        "max_words=1000",
        f"method={method}",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    first = run_cli("pretrain", *overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    engine = method.split("_")[0]
    directory = tmp_path / "cache" / "pretrained" / f"{engine}-glove-wikitext2-16d"
    report = json.loads((directory / "pretrain.json").read_text())
    vectors = np.load(directory / "vectors.npy")
    words = (directory / "words.txt").read_text().splitlines()
    assert vectors.shape == (1000, 16) == (len(words), 16) and np.isfinite(vectors).all()
    assert report["nonzeros"] > report["nonzeros_kept"] > 1000
    losses = report["loss_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0 < report["final_loss"] < losses[0]
    assert set(report["similarity"]) == {"ws353", "simlex999", "men"}
    assert "nonzeros" in first.stdout and str(directory) in first.stdout
    again = run_cli("pretrain", *overrides)
    assert "reusing cached vectors" in again.stdout


# --- the cross-check against mittens -------------------------------------------------------


@pytest.mark.slow
def test_keras_glove_follows_mittens_step_for_step_on_imdb(data_dir, mirror):
    """The issue's "done when": the same loss and word similarity as an independent GloVe.

    mittens takes the whole matrix in every AdaGrad step, so Keras does too here
    (batch_size = all nonzero entries) and both start from the same weights: the same passes
    in the same order. The first 2M IMDB tokens, their 2,000 most frequent words (1.7M
    nonzeros), 50d, 15 steps: 30 s (100 s on a busy machine) and 4 GB here. The words are
    fewer than the issue's 5,000 because a full-batch Keras step holds every entry's vectors
    at once (3.7M entries and 12 s a step at 5,000 words); the batched training that
    keras_glove does by default is compared with mittens in docs/reference.md, not here."""
    shared = [
        "corpus=imdb_unsup",
        "max_tokens=2000000",
        "dim=50",
        "epochs=15",
        "max_words=2000",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
    ]
    cfg = compose("pretrain", ["method=mittens_glove", *shared])
    mittens_settings = settings_from(cfg)
    documents = read_corpus(cfg.corpus, data_dir, str(mirror), mittens_settings.max_tokens)
    corpus = encode_corpus(documents, mittens_settings.min_count)
    matrix = top_words(count_cooccurrences(corpus, window=10), 2000)
    entries = nonzero_entries(matrix, x_max=100, alpha=0.75)
    # mittens' rate (0.05, glove.c's), not keras_glove's batched default, and one batch
    keras_settings = dataclasses.replace(
        settings_from(compose("pretrain", ["method=keras_glove", *shared])),
        batch_size=len(entries),
        learning_rate=mittens_settings.learning_rate,
    )
    assert keras_settings.initial_accumulator == 0.1  # mittens' AdaGrad starting sum
    start = GloveTables.of(build_glove_model(matrix.shape[0], 50, seed=1))

    keras_tables, keras_losses = train_keras_glove(
        entries, matrix.shape[0], keras_settings, jit_compile=True, initial=start
    )
    mittens_tables, mittens_losses = train_mittens_glove(matrix, mittens_settings, start)

    assert len(keras_losses) == len(mittens_losses) == 15
    assert mittens_losses[-1] < 0.6 * mittens_losses[0]  # they train, not just start alike
    np.testing.assert_allclose(keras_losses, mittens_losses, rtol=1e-4)
    keras_final = glove_objective(entries, keras_tables)
    assert keras_final == pytest.approx(glove_objective(entries, mittens_tables), rel=1e-4)
    words = corpus.words[:2000]
    keras_scores = similarity_scores(cfg, words, keras_tables.word_vectors_kept())
    mittens_scores = similarity_scores(cfg, words, mittens_tables.word_vectors_kept())
    for name in ("ws353", "simlex999", "men"):
        assert keras_scores[name]["scored"] == mittens_scores[name]["scored"] >= 40
        difference = keras_scores[name]["spearman"] - mittens_scores[name]["spearman"]
        assert abs(difference) < 0.02, name
