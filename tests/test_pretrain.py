"""`embcompare pretrain`: word2vec trained in Keras and by gensim, its batches, its cache."""

import json
from pathlib import Path

import numpy as np
import pytest

from embcompare.config import compose
from embcompare.errors import EmbcompareError
from embcompare.io import prefetch
from embcompare.vectors.pretrained import load_pretrained
from embcompare.vectors.pretraining.corpus import (
    PAD_ID,
    NoiseSampler,
    encode_corpus,
    keep_probabilities,
)
from embcompare.vectors.pretraining.engines import train_keras
from embcompare.vectors.pretraining.objectives import epoch_batches, skipgram_pairs
from embcompare.vectors.pretraining.settings import (
    Settings,
    cached_report,
    output_dir,
    settings_from,
)

from conftest import last_error_line, pretrain_settings, run_cli

SMALL = ["corpus=wikitext2", "max_tokens=60000", "dim=16", "epochs=1", "batch_size=512"]


def small_overrides(data_dir, mirror, tmp_path, *extra: str) -> list[str]:
    return [
        *SMALL,
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *extra,
    ]


def settings(**changes) -> Settings:
    return pretrain_settings(**changes)


def two_group_corpus(documents: int = 400, length: int = 20, seed: int = 0) -> list[list[str]]:
    """Documents drawn from one of two disjoint word groups: words co-occur only in-group."""
    rng = np.random.default_rng(seed)
    groups = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    return [list(rng.choice(groups[d % 2], length)) for d in range(documents)]


# --- the command, end to end ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["keras_sgns", "keras_cbow", "gensim"])
def test_pretrain_writes_vectors_and_a_rerun_reuses_them(method, data_dir, mirror, tmp_path):
    overrides = small_overrides(data_dir, mirror, tmp_path, f"method={method}")
    first = run_cli("pretrain", *overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    arch = "sgns" if method == "keras_sgns" else "cbow"
    engine = method.split("_")[0]
    directory = tmp_path / "cache" / "pretrained" / f"{engine}-{arch}-wikitext2-16d"
    report = json.loads((directory / "pretrain.json").read_text())
    vectors = np.load(directory / "vectors.npy")
    words = (directory / "words.txt").read_text().splitlines()
    assert vectors.shape == (report["vocab_size"], 16) == (len(words), 16)
    assert np.isfinite(vectors).all()
    assert report["tokens"] == 60000 and report["settings"]["method"] == method
    assert report["train_seconds"] > 0
    assert set(report["similarity"]) == {"ws353", "simlex999", "men"}
    assert "<pad>" not in words and len(set(words)) == len(words)
    assert "simlex999" in first.stdout and str(directory) in first.stdout
    source = load_pretrained(
        {"name": "x", "format": "npy_words", "path": str(directory), "dim": 16}, tmp_path
    )
    assert source.words == words

    written = (directory / "vectors.npy").stat().st_mtime_ns
    again = run_cli("pretrain", *overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing cached vectors" in again.stdout
    assert (directory / "vectors.npy").stat().st_mtime_ns == written
    assert json.loads((directory / "pretrain.json").read_text()) == report


@pytest.mark.slow
def test_other_settings_under_the_same_name_are_an_error_unless_overwritten(
    data_dir, mirror, tmp_path
):
    overrides = small_overrides(data_dir, mirror, tmp_path, "method=gensim")
    assert run_cli("pretrain", *overrides).returncode == 0
    changed = run_cli("pretrain", *overrides, "window=3")
    assert changed.returncode == 2
    error = last_error_line(changed.stderr)
    assert "window: 5 there, 3 now" in error and "overwrite=true" in error
    replaced = run_cli("pretrain", *overrides, "window=3", "overwrite=true")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    report = tmp_path / "cache" / "pretrained" / "gensim-cbow-wikitext2-16d" / "pretrain.json"
    assert json.loads(report.read_text())["settings"]["window"] == 3


@pytest.mark.slow
def test_gensim_by_default_gives_the_same_vectors_in_every_process(data_dir, mirror, tmp_path):
    """One worker thread makes gensim reproducible; the string hash seed must not matter."""
    vectors = []
    for hash_seed in ("1", "2"):
        cache = tmp_path / f"hash{hash_seed}"
        overrides = small_overrides(data_dir, mirror, cache, "method=gensim")
        done = run_cli("pretrain", *overrides, env={"PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr[-3000:]
        (array,) = (cache / "cache" / "pretrained").glob("*/vectors.npy")
        vectors.append(np.load(array))
    assert vectors[0].shape[1] == 16
    np.testing.assert_array_equal(vectors[0], vectors[1])


def test_a_cache_from_before_a_setting_existed_counts_it_as_none(tmp_path):
    def cache_without_workers(name: str, current: Settings):
        directory = tmp_path / name
        directory.mkdir()
        old = {k: v for k, v in current.as_dict().items() if k != "workers"}
        (directory / "pretrain.json").write_text(json.dumps({"settings": old}))
        return directory

    keras = settings()
    assert cached_report(cache_without_workers("keras", keras), keras, False)
    gensim = settings(method="gensim", batch_size=None, workers=1)
    with pytest.raises(EmbcompareError, match="workers: None there, 1 now"):
        cached_report(cache_without_workers("gensim", gensim), gensim, False)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("method=nope", "Could not find 'method/nope'"),
        ("sg=0", "sg=0 does not fit method=keras_sgns: use sg=1"),
        ("window=0", "window=0 must be a positive integer"),
    ],
)
def test_bad_arguments_give_one_error_line(override, expected, tmp_path):
    result = run_cli("pretrain", override, f"paths.cache_dir={tmp_path}")
    assert result.returncode == 2
    assert expected in last_error_line(result.stderr)


def test_embedding_configs_point_where_pretrain_writes():
    pairs = {
        "word2vec-imdb-300d": ["method=gensim"],
        "word2vec-sg-imdb-300d": ["method=gensim", "sg=1"],
        "sgns-keras-imdb-300d": ["method=keras_sgns"],
        "cbow-keras-imdb-300d": ["method=keras_cbow"],
        "glove-keras-imdb-300d": ["method=keras_glove"],
    }
    for embedding, method in pairs.items():
        run_cfg = compose("config", [f"embedding={embedding}"])
        cfg = compose("pretrain", [*method, "corpus=imdb_unsup"])
        written = output_dir(cfg, settings_from(cfg))
        assert written == Path(run_cfg.embedding.path).absolute(), embedding
        assert run_cfg.embedding.dim == cfg.dim


# --- examples and batches ------------------------------------------------------------------


def test_skipgram_pairs_stay_in_their_window_and_document():
    positions = np.arange(1, 301, dtype=np.int32)  # id = position, so pairs reveal distances
    documents = np.repeat(np.arange(3, dtype=np.int32), 100)
    targets, contexts = skipgram_pairs(positions, documents, 4, np.random.default_rng(0))
    distance = np.abs(targets - contexts)
    assert distance.min() >= 1 and distance.max() <= 4
    assert (documents[targets - 1] == documents[contexts - 1]).all()
    # dynamic windows: near words are paired more often than far ones
    counts = np.bincount(distance)[1:]
    assert (np.diff(counts) < 0).all()


def test_sgns_and_cbow_batches_have_fixed_shapes_and_never_sample_padding():
    corpus = encode_corpus(two_group_corpus(documents=30, length=7), min_count=1)
    for sg, input_shape in ((1, (64,)), (0, (64, 4))):
        batches = list(epoch_batches(corpus, settings(sg=sg), np.random.default_rng(0)))
        assert batches and batches[-1][1] == pytest.approx(1.0)
        for batch, _ in batches:
            assert batch.inputs.shape == input_shape
            assert batch.candidates.shape == batch.weights.shape == (64, 4)
            negatives, positive = batch.candidates[:, 1:], batch.candidates[:, 0]
            assert (negatives != PAD_ID).all()
            assert (batch.weights[:, 1:][negatives == positive[:, None]] == 0).all()
            real = batch.weights[:, 0] == 1
            assert (positive[real] != PAD_ID).all()
            used = batch.inputs[real] if sg else batch.inputs[real].max(axis=1)
            assert (used != PAD_ID).all()
            assert (batch.weights[~real] == 0).all()  # padding of the last batch counts nothing
        real_total = sum(int(b.weights[:, 0].sum()) for b, _ in batches)
        assert real_total > 64  # more than one batch of real examples


def test_noise_follows_counts_to_the_power_three_quarters():
    counts = np.array([1000, 100, 10, 1])
    drawn = NoiseSampler(counts).draw(200_000, np.random.default_rng(0))
    assert drawn.min() >= 1 and drawn.max() <= 4
    expected = counts**0.75 / (counts**0.75).sum()
    observed = np.bincount(drawn, minlength=5)[1:] / len(drawn)
    assert observed == pytest.approx(expected, abs=0.005)


def test_subsampling_keeps_rare_words_and_thins_frequent_ones():
    keep = keep_probabilities(np.array([900_000, 1_000, 10]), sample=1e-3)
    assert keep[0] == 1.0  # padding row, never looked up
    assert keep[1] < 0.1 and keep[2] == keep[3] == 1.0


# --- learning ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["keras_sgns", "keras_cbow"])
def test_keras_word2vec_puts_co_occurring_words_together(method):
    corpus = encode_corpus(two_group_corpus(), min_count=1)
    sg = int(method == "keras_sgns")
    trained = train_keras(
        corpus, settings(method=method, sg=sg, learning_rate=0.05), jit_compile=True
    )
    vectors = trained["vectors"] / np.linalg.norm(trained["vectors"], axis=1, keepdims=True)
    group = np.array([w[0] for w in trained["words"]])
    cosines = vectors @ vectors.T
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    different = group[:, None] != group[None, :]
    assert cosines[same].mean() > cosines[different].mean() + 0.5


def test_prefetch_yields_in_order_and_passes_errors_on():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("broken batch")

    with pytest.raises(ValueError, match="broken batch"):
        list(prefetch(failing(), depth=2))
