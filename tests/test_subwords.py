"""fastText: character n-grams and their hashes, the fasttext_bin format, embedding.unseen,
the OOV metrics, and `embcompare pretrain` of fastText in gensim and in Keras.

Every model here is trained by the test itself on the first 20,000 tokens of the unlabelled
IMDB reviews, at 16 dimensions and 5,000 buckets, into pytest's tmp_path."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gensim.models.fasttext import ft_ngram_hashes, load_facebook_vectors
from gensim.models.fasttext_inner import compute_ngrams_bytes, ft_hash_bytes
from omegaconf import OmegaConf, open_dict

from embcompare.analysis.task_scores import has_oov_word, oov_scores
from embcompare.config import compose, keyed_config, run_key
from embcompare.data.corpus import read_corpus
from embcompare.data.text import Vocabulary
from embcompare.errors import EmbcompareError
from embcompare.validation import check_config
from embcompare.vectors.pretrained import (
    FASTTEXT_MODEL_FILE,
    PretrainedVectors,
    build_matrix,
    load_pretrained,
    uniform_scale,
    unseen_policy,
    write_cache,
)
from embcompare.vectors.pretraining.command import save_fasttext_model
from embcompare.vectors.pretraining.corpus import encode_corpus
from embcompare.vectors.pretraining.engines import train_gensim, train_keras
from embcompare.vectors.pretraining.fasttext import build_fasttext_model, subword_table
from embcompare.vectors.pretraining.settings import Settings, output_dir, settings_from
from embcompare.vectors.subwords import char_ngrams, fnv1a_hash, ngram_buckets

from conftest import last_error_line, load_conf, pretrain_settings, run_cli

TOKENS = 20_000
UNSEEN = ["unfilmable", "rewatchability"]  # not among the 20,000 tokens: n-grams only


def fasttext_settings(**changes) -> Settings:
    """gensim's FastText on the first TOKENS IMDB tokens, 16-d, 5,000 buckets."""
    imdb_fasttext = dict(
        method="gensim_fasttext",
        corpus="imdb_unsup",
        window=5,
        negative=5,
        min_count=5,
        epochs=2,
        sample=1e-3,
        batch_size=None,
        seed=1,
        max_tokens=TOKENS,
        workers=1,
        min_n=3,
        max_n=6,
        bucket=5000,
    )
    return pretrain_settings(**{**imdb_fasttext, **changes})


@pytest.fixture(scope="module")
def imdb_documents(data_dir, mirror) -> list[list[str]]:
    return read_corpus(load_conf("corpus", "imdb_unsup"), data_dir, str(mirror), TOKENS)


@pytest.fixture(scope="module")
def gensim_fasttext(imdb_documents, tmp_path_factory):
    """(model.bin path, the gensim FastText model): trained and saved as `pretrain` does."""
    model = train_gensim(imdb_documents, fasttext_settings())["fasttext_model"]
    path = tmp_path_factory.mktemp("fasttext") / FASTTEXT_MODEL_FILE
    save_fasttext_model(model, path)
    return path, model


def fasttext_source(path: Path, cache_dir: Path) -> PretrainedVectors:
    return load_pretrained(
        {"name": "ft", "format": "fasttext_bin", "path": str(path), "dim": 16}, cache_dir
    )


# --- n-grams and their hashes ------------------------------------------------------------


def test_char_ngrams_wrap_the_word_and_count_utf8_characters():
    assert char_ngrams("film", 3, 4) == [b"<fi", b"<fil", b"fil", b"film", b"ilm", b"ilm>", b"lm>"]
    # 'é' is one character of two bytes; the lone '<' and '>' are never n-grams
    assert char_ngrams("é", 1, 3) == [b"<\xc3\xa9", b"<\xc3\xa9>", b"\xc3\xa9", b"\xc3\xa9>"]
    assert char_ngrams("a", 5, 6) == []  # '<a>' has 3 characters


@pytest.mark.parametrize("word", ["film", "a", "don't", "naïve", "日本語", "aaaa", "unfilmable"])
@pytest.mark.parametrize(("min_n", "max_n"), [(3, 6), (1, 2), (5, 5)])
def test_ngram_ids_equal_gensims(word, min_n, max_n):
    assert char_ngrams(word, min_n, max_n) == compute_ngrams_bytes(word, min_n, max_n)
    ours = ngram_buckets(word, min_n, max_n, 2_000_000)
    assert ours == ft_ngram_hashes(word, min_n, max_n, 2_000_000)
    assert all(0 <= bucket < 2_000_000 for bucket in ours)


def test_fnv1a_reads_bytes_as_signed_chars_as_fasttext_does():
    assert fnv1a_hash(b"") == 2166136261
    assert fnv1a_hash(b"a") == 0xE40C292C  # the published 32-bit FNV-1a of "a"
    textbook = ((2166136261 ^ 0xE9) * 16777619) & 0xFFFFFFFF  # 0xE9 not sign-extended
    assert fnv1a_hash(b"\xe9") == ft_hash_bytes(b"\xe9") != textbook
    assert fnv1a_hash("naïve".encode()) == ft_hash_bytes("naïve".encode())


# --- the fasttext_bin format and embedding.unseen -------------------------------------------


def test_fasttext_bin_format_reads_the_words_and_ngrams_gensim_saved(gensim_fasttext, tmp_path):
    path, model = gensim_fasttext
    source = fasttext_source(path, tmp_path)
    assert source.words == model.wv.index_to_key and len(source.words) > 300
    np.testing.assert_allclose(source.vectors, model.wv.vectors, rtol=0, atol=1e-7)
    assert source.subwords.has_ngrams
    for word in UNSEEN:
        assert source.row_of(word) is None
        expected = model.wv.get_vector(word)
        np.testing.assert_allclose(source.subwords.vectors_for([word])[0], expected, atol=1e-7)


def test_evaluate_tells_a_fasttext_model_bin_from_word2vec_binary(gensim_fasttext, tmp_path):
    from embcompare.analysis.semantic import vectors_format

    path, model = gensim_fasttext
    assert vectors_format(path) == "fasttext_bin"
    word2vec_bin = tmp_path / "vectors.bin"
    model.wv.save_word2vec_format(str(word2vec_bin), binary=True)
    assert vectors_format(word2vec_bin) == "word2vec_binary"


def test_unseen_words_get_gensims_ngram_vector_under_subwords_and_a_random_row_under_random(
    gensim_fasttext, tmp_path
):
    path, model = gensim_fasttext
    source = fasttext_source(path, tmp_path)
    # a training word and a dev/test word (an extra) that the word list lacks
    vocab = Vocabulary.build([["the", "movie", UNSEEN[0]]], extra=[UNSEEN[1]])
    subwords = build_matrix(vocab, source, "pretrained", seed=0, unseen="subwords")
    random = build_matrix(vocab, source, "pretrained", seed=0, unseen="random")
    all_random = build_matrix(vocab, source, "random", seed=0)
    for word in UNSEEN:
        row = vocab.index[word]
        np.testing.assert_allclose(subwords[row], model.wv.get_vector(word), rtol=0, atol=1e-7)
        np.testing.assert_array_equal(random[row], all_random[row])  # the random draw
        assert np.abs(random[row]).max() <= uniform_scale(source)
        assert not np.allclose(random[row], subwords[row])
    for word in ("the", "movie"):  # listed words: the same row under either policy
        listed = source.vectors[source.index[word]]
        np.testing.assert_array_equal(subwords[vocab.index[word]], listed)
        np.testing.assert_array_equal(random[vocab.index[word]], listed)
    np.testing.assert_array_equal(subwords[:2], 0)  # padding and unknown stay zero


def test_a_pretrain_directory_reads_its_model_bin_only_when_asked(gensim_fasttext, tmp_path):
    path, model = gensim_fasttext
    directory = tmp_path / "gensim-fasttext-sgns-imdb_unsup-16d"
    write_cache(directory, model.wv.index_to_key, model.wv.vectors)
    cfg = {"name": "ft-dir", "format": "npy_words", "path": str(directory), "dim": 16}
    assert load_pretrained(cfg, tmp_path).subwords is None  # no model.bin beside the vectors
    shutil.copy(path, directory / FASTTEXT_MODEL_FILE)
    source = load_pretrained(cfg, tmp_path / "other")  # a new file set: loaded anew
    assert "keyed" not in source.subwords.__dict__  # not read yet
    assert unseen_policy("subwords", source) == "subwords"
    vectors = source.subwords.vectors_for(UNSEEN)
    np.testing.assert_allclose(vectors, [model.wv.get_vector(w) for w in UNSEEN], atol=1e-7)


def test_subwords_needs_a_source_with_ngrams_and_the_policy_must_be_known():
    words_only = PretrainedVectors("glove-like", ["good"], np.ones((1, 4), np.float32))
    assert unseen_policy("random", words_only) == "random"
    with pytest.raises(EmbcompareError) as raised:
        unseen_policy("subwords", words_only)
    assert str(raised.value).startswith(
        "embedding.unseen=subwords: glove-like has no character n-grams"
    )
    with pytest.raises(EmbcompareError, match=r"embedding.unseen='ngrams' must be one of"):
        unseen_policy("ngrams", words_only)
    with pytest.raises(EmbcompareError, match=r"^embedding.unseen='ngrams' must be one of"):
        check_config(compose("config", ["embedding.unseen=ngrams"]))


def write_word2vec_binary(path: Path) -> None:
    from gensim.models import KeyedVectors

    keyed = KeyedVectors(4)
    keyed.add_vectors(["good", "bad"], np.ones((2, 4), np.float32))
    keyed.save_word2vec_format(str(path), binary=True)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("empty", "too short for its header"),
        ("vec_text", "not a fastText .bin model"),
        ("word2vec_binary", "not a fastText .bin model"),
        ("cut_in_header", "too short for its header"),
        ("cut_in_vocabulary", "truncated: it ends at byte 300,"),
        ("cut_in_word_vectors", "truncated"),
        ("cut_in_output_vectors", "truncated"),
        ("missing", "no such file"),
    ],
)
def test_a_bad_fasttext_bin_is_one_error_line_naming_the_key(
    damage, problem, gensim_fasttext, tmp_path
):
    good = gensim_fasttext[0].read_bytes()
    bad = tmp_path / "bad.bin"
    cuts = {
        "empty": 0,
        "cut_in_header": 40,
        "cut_in_vocabulary": 300,  # the header ends at byte 92, the vocabulary some 5 kB later
        "cut_in_word_vectors": len(good) // 2,
        "cut_in_output_vectors": len(good) - 4,
    }
    if damage in cuts:
        bad.write_bytes(good[: cuts[damage]])
    elif damage == "vec_text":
        bad.write_text("2 3\ngood 0.1 0.2 0.3\nbad 0.4 0.5 0.6\n")
    elif damage == "word2vec_binary":
        write_word2vec_binary(bad)
    with pytest.raises(EmbcompareError) as raised:
        fasttext_source(bad, tmp_path)
    message = str(raised.value)
    assert message.startswith(f"embedding.path='{bad}': ") and "\n" not in message
    assert problem in message


@pytest.mark.slow
def test_a_bad_fasttext_bin_stops_a_run_with_one_error_line(
    gensim_fasttext, tmp_path, data_dir, mirror
):
    bad = tmp_path / "cut.bin"
    bad.write_bytes(gensim_fasttext[0].read_bytes()[:1000])
    result = run_cli(
        "run", "setup=static", "embedding=vectors-file", "embedding.format=fasttext_bin",
        f"embedding.path={bad}", "train.n=60", "semantic.enabled=false",
        f"paths.data_dir={data_dir}", f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path / 'results'}",
    )  # fmt: skip
    assert result.returncode == 2
    assert last_error_line(result.stderr) == (
        f"embcompare: error: embedding.path='{bad}': truncated: it ends at byte 1000, "
        "before the vectors it declares"
    )


# --- a run: the matrix, the metrics, the run key --------------------------------------------


def test_oov_metrics_on_a_hand_checked_case():
    source = PretrainedVectors("toy", ["good", "bad", "film"], np.zeros((3, 2), np.float32))
    test_tokens = [["good", "film"], ["gr8", "film"], ["bad", "Film"], ["zzz"], []]
    oov = has_oov_word(test_tokens, source)
    assert oov.tolist() == [False, True, False, True, False]  # 'Film' is found lowercased
    correct = np.array([True, False, True, True, False])
    assert oov_scores(correct, oov) == {
        "test_sentences_oov_words": 2,
        "test_accuracy_oov_words": 0.5,  # 'gr8 film' wrong, 'zzz' right
        "test_accuracy_no_oov_words": pytest.approx(2 / 3),
    }
    assert oov_scores(correct, np.zeros(5, bool))["test_accuracy_oov_words"] is None


def test_run_keys_stay_as_they_were_unless_subwords_is_chosen():
    for overrides in ([], ["experiment=learning_curve", "setup=static"]):
        default = compose("config", overrides)
        assert default.embedding.unseen == "random"
        without = compose("config", overrides)
        with open_dict(without):
            del without.embedding["unseen"]  # the config as it was before the setting existed
        assert run_key(_root_=default) == run_key(_root_=without)
        assert "unseen" not in keyed_config(default)["embedding"]
        chosen = compose("config", [*overrides, "embedding.unseen=subwords"])
        assert keyed_config(chosen)["embedding"]["unseen"] == "subwords"
        assert run_key(_root_=chosen) != run_key(_root_=default)


@pytest.mark.slow
def test_a_static_run_keeps_ngram_rows_for_unlisted_test_words_and_records_oov_metrics(
    gensim_fasttext, cfg_run, tmp_path
):
    from embcompare import run

    path, model = gensim_fasttext
    common = [
        "setup=static", "embedding=vectors-file", "embedding.format=fasttext_bin",
        f"embedding.path={path}", "embedding.dim=16", "semantic.enabled=false",
    ]  # fmt: skip
    rows, metrics = {}, {}
    for policy in ("subwords", "random"):
        out = tmp_path / policy
        out.mkdir()
        metrics[policy] = run.execute(cfg_run(*common, f"embedding.unseen={policy}"), out)
        saved = np.load(out / "embedding.npz")
        rows[policy] = dict(zip(saved["words"].tolist(), saved["vectors"], strict=True))
        assert metrics[policy] == json.loads((out / "metrics.json").read_text())
    # static: the rows are never trained, so the saved ones are the initial ones
    unlisted = sorted(set(rows["subwords"]) - set(model.wv.key_to_index) - {"<pad>", "<unk>"})
    assert len(unlisted) > 1000  # MR's training, dev and test words beyond 545 IMDB words
    for word in unlisted[:: len(unlisted) // 20]:
        np.testing.assert_allclose(rows["subwords"][word], model.wv.get_vector(word), atol=1e-6)
    # under random only training words the list lacks have rows, and those are random
    unlisted_random = set(rows["random"]) - set(model.wv.key_to_index) - {"<pad>", "<unk>"}
    assert unlisted_random < set(unlisted)
    word = sorted(unlisted_random)[0]
    assert not np.allclose(rows["random"][word], rows["subwords"][word])
    for policy in ("subwords", "random"):  # the split is the word list's, whatever the policy
        oov_count = metrics[policy]["test_sentences_oov_words"]
        assert 0 < oov_count < metrics[policy]["n_test"]
        assert 0 <= metrics[policy]["test_accuracy_oov_words"] <= 1
        assert oov_count == metrics["subwords"]["test_sentences_oov_words"]


# --- pretraining ------------------------------------------------------------------------------


def test_fasttext_settings_are_checked_and_name_their_directory(tmp_path):
    cfg = compose("pretrain", ["method=gensim_fasttext", "dim=16", f"paths.cache_dir={tmp_path}"])
    settings = settings_from(cfg)
    assert (settings.sg, settings.min_n, settings.max_n, settings.bucket) == (1, 3, 6, 2_000_000)
    assert output_dir(cfg, settings).name == "gensim-fasttext-sgns-imdb_unsup-16d"
    word2vec = settings_from(compose("pretrain", ["method=gensim", "sg=1"]))
    assert (word2vec.min_n, word2vec.max_n, word2vec.bucket) == (None, None, None)
    keras = compose("pretrain", ["method=keras_fasttext", "dim=16", f"paths.cache_dir={tmp_path}"])
    assert output_dir(keras, settings_from(keras)).name == "keras-fasttext-sgns-imdb_unsup-16d"
    with pytest.raises(EmbcompareError, match=r"max_n=2 must be at least min_n=3"):
        settings_from(compose("pretrain", ["method=gensim_fasttext", "max_n=2"]))
    with pytest.raises(EmbcompareError, match=r"bucket=0 must be a positive integer"):
        settings_from(compose("pretrain", ["method=keras_fasttext", "bucket=0"]))
    with pytest.raises(EmbcompareError, match=r"sg=0 does not fit method=keras_fasttext"):
        settings_from(compose("pretrain", ["method=keras_fasttext", "sg=0"]))


def test_subword_table_lists_each_word_then_its_ngram_buckets():
    words = ["film", "naïve"]
    table = subword_table(words, 3, 6, 100)
    assert table.word_rows == 3 and table.input_rows == 103
    assert table.ids[table.offsets[0] : table.offsets[1]].tolist() == [0]  # padding
    for row, word in enumerate(words, start=1):
        expected = [row] + [3 + b for b in ft_ngram_hashes(word, 3, 6, 100)]
        assert table.ids[table.offsets[row] : table.offsets[row + 1]].tolist() == expected
    ids, owners = table.flat_inputs(np.array([2, 1]), multiple=8)
    naive, film = len(ft_ngram_hashes("naïve", 3, 6, 100)), len(ft_ngram_hashes("film", 3, 6, 100))
    used = 1 + naive + 1 + film
    assert len(ids) == len(owners) == -(-used // 8) * 8
    assert ids[0] == 2 and ids[1 + naive] == 1
    assert owners[:used].tolist() == [0] * (1 + naive) + [1] * (1 + film)
    assert (ids[used:] == 0).all() and (owners[used:] == 2).all()  # padding, a spare owner


def test_keras_fasttext_averages_a_words_rows_and_gives_each_the_full_error():
    import tensorflow as tf

    table = subword_table(["film", "movie"], 3, 6, 50)
    model = build_fasttext_model(table, dim=4, seed=0)
    rows = np.random.default_rng(0).normal(size=(table.input_rows, 4)).astype(np.float32)
    outputs = np.random.default_rng(1).normal(size=(table.word_rows, 4)).astype(np.float32)
    model.input_vectors.embeddings.assign(rows)
    model.output_vectors.embeddings.assign(outputs)
    targets = np.array([1, 2])  # film, movie; each example's target is the same number here
    ids, owners = table.flat_inputs(targets, multiple=8)
    candidates = np.array([[2, 1], [1, 2]], np.int32)
    with tf.GradientTape() as tape:
        logits = model(((ids, owners, np.array([0, 1], np.int32)), candidates))
        loss = tf.reduce_sum(logits[0, 0])  # d loss / d hidden(film) = output row of movie
    film_rows = table.ids[table.offsets[1] : table.offsets[2]]
    mean = rows[film_rows].mean(axis=0)
    np.testing.assert_allclose(logits[0], outputs[[2, 1]] @ mean, rtol=1e-5)
    gradient = tf.convert_to_tensor(tape.gradient(loss, model.input_vectors.embeddings)).numpy()
    for row in np.unique(film_rows):  # the full error, once per time the row is listed
        listed = (film_rows == row).sum()
        np.testing.assert_allclose(gradient[row], listed * outputs[2], rtol=1e-5)
    movie_only = np.setdiff1d(table.ids[table.offsets[2] : table.offsets[3]], film_rows)
    np.testing.assert_array_equal(gradient[movie_only], 0)


@pytest.mark.slow
def test_keras_fasttext_saves_a_model_bin_whose_ngrams_are_its_own(imdb_documents, tmp_path):
    settings = fasttext_settings(method="keras_fasttext", epochs=1, batch_size=512, workers=None)
    corpus = encode_corpus(imdb_documents, settings.min_count)
    trained = train_keras(corpus, settings, jit_compile=True)
    assert np.isfinite(trained["vectors"]).all()
    path = tmp_path / FASTTEXT_MODEL_FILE
    save_fasttext_model(trained["fasttext_model"], path)
    keyed = load_facebook_vectors(str(path))
    order = [trained["words"].index(word) for word in keyed.index_to_key]
    np.testing.assert_allclose(keyed.vectors, trained["vectors"][order], atol=1e-6)
    ngram_rows = trained["fasttext_model"].wv.vectors_ngrams
    for word in UNSEEN:
        expected = ngram_rows[ngram_buckets(word, 3, 6, 5000)].mean(axis=0)
        np.testing.assert_allclose(keyed.get_vector(word), expected, atol=1e-6)
    losses = trained["details"]["loss_per_example"]
    assert len(losses) == 1 and 0 < losses[0] < 4.2  # below 6 log 2, where it starts


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gensim_fasttext", "keras_fasttext"])
def test_pretrain_writes_word_vectors_and_a_model_bin(method, data_dir, mirror, tmp_path):
    overrides = [
        f"method={method}", "corpus=imdb_unsup", f"max_tokens={TOKENS}", "dim=16",
        "bucket=5000", "epochs=1", "batch_size=512", f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    done = run_cli("pretrain", *overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = method.split("_")[0]
    directory = tmp_path / "cache" / "pretrained" / f"{engine}-fasttext-sgns-imdb_unsup-16d"
    report = json.loads((directory / "pretrain.json").read_text())
    assert report["tokens"] == TOKENS and report["arch"] == "sgns"
    assert {k: report["settings"][k] for k in ("min_n", "max_n", "bucket")} == {
        "min_n": 3,
        "max_n": 6,
        "bucket": 5000,
    }
    model_file = directory / FASTTEXT_MODEL_FILE
    words = report["vocab_size"]
    # the two matrices, (words + buckets) x dim and words x dim, are nearly all of the file
    floats = ((words + 5000) * 16 + words * 16) * 4
    assert floats < model_file.stat().st_size < floats + 20 * words + 200
    cfg = {"name": "ft", "format": "npy_words", "path": str(directory), "dim": 16}
    source = load_pretrained(cfg, tmp_path)
    from_bin = fasttext_source(model_file, tmp_path)
    assert sorted(source.words) == sorted(from_bin.words)  # gensim orders ties its own way
    order = [from_bin.index[word] for word in source.words]
    np.testing.assert_allclose(source.vectors, from_bin.vectors[order], atol=1e-6)
    again = run_cli("pretrain", *overrides)
    assert "reusing cached vectors" in again.stdout


def test_the_fasttext_embedding_config_points_where_pretrain_writes():
    run_cfg = compose("config", ["embedding=fasttext-imdb-300d"])
    cfg = compose("pretrain", ["method=gensim_fasttext", "corpus=imdb_unsup"])
    assert output_dir(cfg, settings_from(cfg)) == Path(run_cfg.embedding.path).absolute()
    assert run_cfg.embedding.dim == cfg.dim and run_cfg.embedding.format == "npy_words"
    assert OmegaConf.select(run_cfg, "embedding.unseen") == "random"
