"""Pretrained sources (package, gensim formats, cache) and the run's embedding matrix."""

import os
import time

import numpy as np
import pytest
from gensim.models import KeyedVectors

from embcompare.data.text import Vocabulary
from embcompare.errors import EmbcompareError
from embcompare.vectors.pretrained import (
    PretrainedVectors,
    build_matrix,
    coverage,
    forget_loaded,
    load_pretrained,
    uniform_scale,
)

from conftest import load_conf

WORDS = ["the", "good", "bad", "film", "paris"]


@pytest.fixture
def small_source() -> PretrainedVectors:
    vectors = np.arange(len(WORDS) * 4, dtype=np.float32).reshape(len(WORDS), 4) / 10
    return PretrainedVectors("toy", list(WORDS), vectors)


def write_text_vectors(path, words, vectors, header=True):
    with open(path, "w") as handle:
        if header:
            handle.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, vectors, strict=True):
            handle.write(word + " " + " ".join(f"{x:.6f}" for x in row) + "\n")


def test_glove_package_source_loads_real_400k_vectors(tmp_path):
    source = load_pretrained(load_conf("embedding", "glove-6b-50d"), tmp_path)
    assert source.vectors.shape == (400_000, 50)
    assert source.words[:3] == ["the", ",", "."]
    np.testing.assert_allclose(source.vectors[source.index["the"]][:3], [0.418, 0.24968, -0.41242])


@pytest.mark.parametrize("file_format", ["word2vec_text", "glove_text", "word2vec_binary"])
def test_gensim_formats_parse_and_cache(tmp_path, small_source, file_format):
    path = tmp_path / f"vectors.{file_format}"
    if file_format == "word2vec_binary":
        kv = KeyedVectors(4)
        kv.add_vectors(small_source.words, small_source.vectors)
        kv.save_word2vec_format(str(path), binary=True)
    else:
        write_text_vectors(path, WORDS, small_source.vectors, header=file_format != "glove_text")
    cfg = {"name": "toy", "format": file_format, "path": str(path), "dim": 4}
    first = load_pretrained(cfg, tmp_path / "cache")
    assert first.words == WORDS
    np.testing.assert_allclose(first.vectors, small_source.vectors, atol=1e-6)
    assert len(list((tmp_path / "cache" / "vectors").iterdir())) == 1
    assert load_pretrained(cfg, tmp_path / "cache") is first  # memoised in the process
    forget_loaded()
    second = load_pretrained(cfg, tmp_path / "cache")
    assert isinstance(second.vectors, np.memmap)  # read back from the cache, not re-parsed


def test_malformed_vectors_line_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 2\nthe 0.1 0.2\ngood 0.3 oops\nbad 0.5 0.6\n")
    with pytest.raises(EmbcompareError, match=r"bad.txt: line 3: not a number"):
        load_pretrained({"name": "bad", "format": "word2vec_text", "path": str(path)}, tmp_path)


def test_short_vectors_line_is_named(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("the 0.1 0.2 0.3\ngood 0.3 0.4\n")
    with pytest.raises(EmbcompareError, match=r"short.txt: line 2: expected a word and 3 numbers"):
        load_pretrained({"name": "short", "format": "glove_text", "path": str(path)}, tmp_path)


def test_wrong_dimension_names_the_key(tmp_path, small_source):
    path = tmp_path / "v.txt"
    write_text_vectors(path, WORDS, small_source.vectors)
    with pytest.raises(EmbcompareError, match=r"dimension 4, but embedding.dim=300"):
        load_pretrained(
            {"name": "v", "format": "word2vec_text", "path": str(path), "dim": 300}, tmp_path
        )


def test_missing_vectors_file_names_the_key(tmp_path):
    with pytest.raises(EmbcompareError, match=r"embedding.path='.*nowhere.bin'"):
        load_pretrained(
            {"name": "x", "format": "word2vec_binary", "path": str(tmp_path / "nowhere.bin")},
            tmp_path,
        )


def test_cached_glove_text_loads_fast(tmp_path):
    """The cache's purpose: not a timing benchmark, a guard against re-parsing every time."""
    source = load_pretrained(load_conf("embedding", "glove-6b-50d"), tmp_path)
    path = tmp_path / "glove.txt"
    write_text_vectors(path, source.words[:20000], np.asarray(source.vectors[:20000]), header=False)
    cfg = {"name": "glove20k", "format": "glove_text", "path": str(path), "dim": 50}
    load_pretrained(cfg, tmp_path / "cache")
    forget_loaded()
    started = time.perf_counter()
    again = load_pretrained(cfg, tmp_path / "cache")
    assert len(again.words) == 20000 and time.perf_counter() - started < 2.0


def test_matrix_uses_pretrained_rows_kims_oov_rule_and_zero_padding(small_source):
    vocab = Vocabulary.build([["good", "film", "unseenword", "good"]], extra=["Paris"])
    matrix = build_matrix(vocab, small_source, "pretrained", seed=0)
    index = vocab.index
    assert matrix.shape == (len(vocab), 4)
    np.testing.assert_array_equal(matrix[0], 0)  # padding
    np.testing.assert_array_equal(matrix[1], 0)  # unknown
    np.testing.assert_array_equal(matrix[index["good"]], small_source.vectors[1])
    np.testing.assert_array_equal(matrix[index["Paris"]], small_source.vectors[4])  # case fallback
    scale = uniform_scale(small_source)
    assert np.all(np.abs(matrix[index["unseenword"]]) <= scale)


def test_random_init_variance_matches_pretrained_vectors():
    rng = np.random.default_rng(0)
    source = PretrainedVectors("g", [f"w{i}" for i in range(2000)], rng.normal(0, 0.4, (2000, 50)))
    vocab = Vocabulary.build([[f"w{i}" for i in range(2000)]])
    matrix = build_matrix(vocab, source, "random", seed=1)
    assert matrix[2:].var() == pytest.approx(source.vectors.var(), rel=0.05)
    assert not np.allclose(matrix[vocab.index["w5"]], source.vectors[5])


@pytest.mark.parametrize(
    ("init_scale", "half_width"),
    [("keras", 0.05), ("variance_matched", None), (0.3, 0.3), ("0.3", 0.3)],
)
def test_random_init_scale_is_keras_kims_or_a_given_half_width(init_scale, half_width):
    rng = np.random.default_rng(0)
    source = PretrainedVectors("g", [f"w{i}" for i in range(2000)], rng.normal(0, 0.4, (2000, 50)))
    vocab = Vocabulary.build([[f"w{i}" for i in range(2000)]])
    matrix = build_matrix(vocab, source, "random", seed=1, init_scale=init_scale)
    half_width = uniform_scale(source) if half_width is None else half_width
    assert np.abs(matrix[2:]).max() <= half_width
    assert np.abs(matrix[2:]).max() == pytest.approx(half_width, rel=1e-3)  # 100k draws
    assert matrix[2:].var() == pytest.approx(half_width**2 / 3, rel=0.05)


@pytest.mark.parametrize("bad", ["kim", -0.1, 0, "nan", True])
def test_unknown_init_scale_is_an_error_naming_the_channel(small_source, bad):
    vocab = Vocabulary.build([["good"]])
    with pytest.raises(EmbcompareError, match=r"setup.channels.0 init_scale=.* must be one of"):
        build_matrix(vocab, small_source, "random", 0, init_scale=bad, where="setup.channels.0")


def test_coverage_counts_types_and_tokens(small_source):
    result = coverage([["good", "good", "good", "zzz"], ["film"]], small_source)
    assert result.types == pytest.approx(2 / 3)
    assert result.tokens == pytest.approx(4 / 5)


def test_a_vectors_file_rewritten_in_place_is_loaded_again(tmp_path, small_source):
    path = tmp_path / "vectors.txt"
    write_text_vectors(path, WORDS, small_source.vectors, header=False)
    cfg = {"name": "toy", "format": "glove_text", "path": str(path), "dim": 4}
    before = load_pretrained(cfg, tmp_path / "cache")
    write_text_vectors(path, WORDS, 2 * small_source.vectors, header=False)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    after = load_pretrained(cfg, tmp_path / "cache")
    np.testing.assert_allclose(np.asarray(after.vectors), 2 * np.asarray(before.vectors), atol=1e-5)
