"""Readers against the real files and their quirks, split policies and nested subsamples."""

import gzip

import numpy as np
import pytest
from omegaconf import OmegaConf

from embcompare.data import datasets as data
from embcompare.data.datasets import (
    READERS,
    DatasetSpec,
    load_splits,
    load_tokenized,
    nested_order,
    read_split,
    subsample,
)
from embcompare.data.text import tokenize
from embcompare.errors import EmbcompareError

from conftest import load_conf


def spec_of(name: str) -> DatasetSpec:
    return DatasetSpec.from_config(load_conf("dataset", name))


def test_mr_reads_cp1252_lines(data_dir, mirror):
    split = read_split(spec_of("mr"), data_dir, str(mirror), "all")
    assert len(split) == 10662
    assert np.bincount(split.labels).tolist() == [5331, 5331]
    assert any("\u00e9" in text for text in split.texts)  # cp1252 0xe9 decoded, not replaced


def test_clickbait_reads_one_gzip_file_per_class_skipping_blank_lines(data_dir, mirror):
    split = read_split(spec_of("clickbait"), data_dir, str(mirror), "all")
    assert np.bincount(split.labels).tolist() == [16001, 15999]
    assert all(text.strip() for text in split.texts)


def test_tsv_reader_handles_crlf_gzip_and_named_columns(tmp_path):
    path = tmp_path / "x.tsv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"file\tlabel\ttext\r\na.txt\t1\tgood film\r\nb.txt\t0\tbad film\r\n")
    spec = DatasetSpec("toy", "tsv", "utf-8", ("negative", "positive"), {}, {})
    rows = list(READERS["tsv"](path, {}, spec))
    assert rows == [("good film", 1), ("bad film", 0)]


def test_sst2_given_split_sizes(data_dir, mirror):
    splits = load_splits(load_conf("dataset", "sst2"), data_dir, str(mirror))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (6920, 872, 1821)


def compose_dataset(name: str):
    from embcompare.config import compose

    return compose("config", [f"dataset={name}"]).dataset


def test_sst2_phrases_trains_on_the_glue_tsv_beside_label_text_dev_and_test(data_dir, mirror):
    splits = load_splits(compose_dataset("sst2_phrases"), data_dir, str(mirror))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (67349, 872, 1821)
    assert splits.train.texts[0] == "hide new secretions from the parental units"
    assert splits.train.labels[:3].tolist() == [0, 0, 1]
    sentences = load_splits(load_conf("dataset", "sst2"), data_dir, str(mirror))
    assert splits.test.texts == sentences.test.texts


def test_a_files_entry_with_an_unknown_format_names_its_key():
    cfg = load_conf("dataset", "sst2")
    cfg.files.dev.format = "csv"
    with pytest.raises(EmbcompareError, match=r"dataset.files.dev.format='csv' is unknown"):
        DatasetSpec.from_config(cfg)


@pytest.mark.parametrize(("name", "test_size"), [("trec", 500), ("cr", 378)])
def test_kfold_unless_given_uses_a_given_test_file_else_cv(data_dir, mirror, name, test_size):
    cfg = load_conf("dataset", name)
    cfg.split.policy, cfg.split.fold = "kfold_unless_given", 9
    splits = load_splits(cfg, data_dir, str(mirror))
    assert len(splits.test) in (test_size - 1, test_size)
    if name == "cr":  # the last fold of 10, not the holdout cut
        cfg.split.policy = "kfold"
        assert load_splits(cfg, data_dir, str(mirror)).test.texts == splits.test.texts


def test_trec_keeps_case_and_holds_out_a_stratified_dev(data_dir, mirror):
    cfg = load_conf("dataset", "trec")
    assert cfg.lowercase is False
    splits = load_splits(cfg, data_dir, str(mirror))
    assert len(splits.test) == 500
    assert len(splits.train) + len(splits.dev) == 5452
    train_share = np.bincount(splits.train.labels) / len(splits.train)
    dev_share = np.bincount(splits.dev.labels, minlength=6) / len(splits.dev)
    np.testing.assert_allclose(train_share, dev_share, atol=0.01)


def test_holdout_and_kfold_are_disjoint_and_complete(data_dir, mirror):
    cfg = load_conf("dataset", "mpqa")
    holdout = load_splits(cfg, data_dir, str(mirror))
    assert len(holdout.test) == pytest.approx(1061, abs=1)
    assert len(holdout.train) + len(holdout.dev) + len(holdout.test) == 10606
    cfg.split.policy, cfg.split.fold = "kfold", 3
    fold = load_splits(cfg, data_dir, str(mirror))
    assert len(fold.test) in (1060, 1061)
    assert len(fold.train) + len(fold.dev) + len(fold.test) == 10606
    assert fold.test.texts != holdout.test.texts
    with pytest.raises(EmbcompareError, match="dataset.split.fold=10"):
        cfg.split.fold = 10
        load_splits(cfg, data_dir, str(mirror))


def test_label_outside_declared_set_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0 fine\n7 not a label\n")
    spec = DatasetSpec("toy", "label_text", "utf-8", ("a", "b"), {}, {})
    with pytest.raises(EmbcompareError, match=r"bad.txt: line 2: label '7'"):
        list(READERS["label_text"](path, {}, spec))


def test_non_utf8_bytes_where_utf8_is_declared_name_the_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"0 ok\n1 caf\xe9\n")
    spec = DatasetSpec("toy", "label_text", "utf-8", ("a", "b"), {}, {})
    with pytest.raises(EmbcompareError, match=r"latin.txt: line 2: bytes are not valid utf-8"):
        list(READERS["label_text"](path, {}, spec))


def test_nested_order_gives_stratified_nested_prefixes():
    labels = np.array([0] * 700 + [1] * 300)
    order = nested_order(labels, seed=5)
    assert sorted(order.tolist()) == list(range(1000))
    for n in (10, 100, 500):
        assert np.bincount(labels[order[:n]]).tolist() == [round(0.7 * n), round(0.3 * n)]
    assert not np.array_equal(order, nested_order(labels, seed=6))


def test_subsample_is_nested_across_n_and_rejects_too_large_n(data_dir, mirror):
    train = load_splits(load_conf("dataset", "sst2"), data_dir, str(mirror)).train
    small, large = subsample(train, 100, seed=3), subsample(train, 500, seed=3)
    assert set(small.texts) <= set(large.texts)
    assert len(small) == 100 and subsample(train, "all", 3) is train
    with pytest.raises(EmbcompareError, match=r"train.n=7000 exceeds the 6920"):
        subsample(train, 7000, seed=3)


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    from embcompare.data.fetch import sha256_of

    cfg = OmegaConf.create(dict(load_conf("dataset", "mr")))
    cfg.files.all.path = "empty.txt"
    cfg.files.all.sha256 = sha256_of(tmp_path / "empty.txt")
    with pytest.raises(EmbcompareError, match="no all examples in .*empty.txt"):
        load_splits(cfg, tmp_path, None)


def test_load_tokenized_matches_reading_then_tokenizing(data_dir, mirror, tmp_path):
    cfg = OmegaConf.merge(load_conf("dataset", "mr"), {"split": {"fold": 3}})
    plain = load_splits(cfg, data_dir, str(mirror))
    cached = load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    for ours, theirs in zip(
        (cached.train, cached.dev, cached.test), (plain.train, plain.dev, plain.test), strict=True
    ):
        assert ours.texts == theirs.texts
        np.testing.assert_array_equal(ours.labels, theirs.labels)
        assert ours.tokens == [tokenize(t)[: cfg.max_length] for t in theirs.texts]
    subset = subsample(cached.train, 40, seed=1)
    assert subset.tokens == [tokenize(t) for t in subset.texts]


def test_tokenized_dataset_is_served_from_disk_in_a_new_process(
    data_dir, mirror, tmp_path, monkeypatch
):
    cfg = load_conf("dataset", "trec")
    first = load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    assert list((tmp_path / "tokenized").rglob("*.parquet"))
    data._tokenized_files.cache_clear()  # what a new process starts with

    def no_reading(*args):
        raise AssertionError("read the files again instead of the cache")

    monkeypatch.setattr(data, "read_split", no_reading)
    again = load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    assert again.train.tokens == first.train.tokens
    hits = data._tokenized_files.cache_info().hits
    load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    assert data._tokenized_files.cache_info().hits == hits + 1


def test_tokenized_cache_key_follows_the_tokenizing_settings(data_dir, mirror, tmp_path):
    cfg = load_conf("dataset", "trec")
    kept_case = load_tokenized(cfg, data_dir, str(mirror), tmp_path).train.tokens[0]
    lowered = OmegaConf.merge(cfg, {"lowercase": True, "max_length": 3})
    tokens = load_tokenized(lowered, data_dir, str(mirror), tmp_path).train.tokens[0]
    assert kept_case[0] != kept_case[0].lower()  # TREC keeps case: "How did serfdom ..."
    assert tokens == [t.lower() for t in kept_case[:3]]
