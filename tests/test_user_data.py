"""Your own data without touching the package: `dataset=file dataset.path=...` (csv, tsv,
parquet, label<TAB>text) and `similarity.extra=[...]` word-pair files, on real SST-2 lines."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from embcompare import cli
from embcompare.config import CONF_DIR, compose, keyed_config
from embcompare.data import fetch, user_file
from embcompare.data.datasets import load_splits, load_tokenized
from embcompare.errors import EmbcompareError

from conftest import last_error_line, run_cli

SST2_LINES = 300  # the first lines of SST-2's training file: 161 positive, 139 negative


@pytest.fixture(scope="module")
def sst2_rows(mirror) -> list[tuple[str, str]]:
    """(text, label name) of real SST-2 sentences."""
    lines = (mirror / "classification/sst2/stsa.binary.train").read_text().splitlines()
    rows = []
    for line in lines[:SST2_LINES]:
        label, _, text = line.partition(" ")
        rows.append((text, "positive" if label == "1" else "negative"))
    return rows


def write_table(path: Path, rows, text_column="sentence", label_column="mood") -> Path:
    frame = pd.DataFrame(rows, columns=[text_column, label_column])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".txt":
        path.write_text("".join(f"{label}\t{text}\n" for text, label in rows))
    else:
        separator = "\t" if path.suffix == ".tsv" else ","
        quoting = csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL
        frame.to_csv(path, sep=separator, index=False, quoting=quoting)
    return path


def file_dataset(path: Path, *overrides: str):
    return compose(
        "config",
        [
            "dataset=file",
            f"dataset.path={path}",
            "dataset.text_column=sentence",
            "dataset.label_column=mood",
            *overrides,
        ],
    ).dataset


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".txt"])
def test_a_user_file_is_read_split_and_labelled_from_its_own_values(tmp_path, sst2_rows, suffix):
    path = write_table(tmp_path / f"reviews{suffix}", sst2_rows)
    cfg = file_dataset(path)
    assert cfg.name == "reviews"
    splits = load_splits(cfg, tmp_path / "unused-data-dir")
    assert len(splits.train) + len(splits.dev) + len(splits.test) == SST2_LINES
    assert len(splits.test) == 30  # dataset.split.test_fraction 0.1, stratified
    assert sorted(splits.test.labels.tolist()).count(1) in (16, 17)  # 161/300 positive
    texts = dict(sst2_rows)
    for split in (splits.train, splits.dev, splits.test):
        for text, label in zip(split.texts, split.labels, strict=True):
            assert ["negative", "positive"][label] == texts[text]


def test_integer_labels_of_a_parquet_file_sort_numerically(tmp_path, sst2_rows):
    stars = [(text, 10 if label == "positive" else 2) for text, label in sst2_rows]
    path = write_table(tmp_path / "stars.parquet", stars)
    cfg = file_dataset(path)
    user_file.prepare(cfg, tmp_path / "cache")
    assert list(cfg.labels) == ["2", "10"]  # not the text order "10" < "2"
    splits = load_splits(cfg, tmp_path)
    assert set(splits.train.labels.tolist()) == {0, 1}


def test_kfold_cuts_a_user_file_into_disjoint_folds(tmp_path, sst2_rows):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    tests = [
        set(load_splits(file_dataset(path, "dataset.split.policy=kfold",
                                     "dataset.split.folds=5", f"dataset.split.fold={fold}"),
                        tmp_path).test.texts)
        for fold in range(5)
    ]  # fmt: skip
    assert [len(t) for t in tests] == [60] * 5
    assert len(set().union(*tests)) == SST2_LINES


def test_a_missing_column_names_its_key_and_the_columns(tmp_path, sst2_rows):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    with pytest.raises(EmbcompareError) as error:
        user_file.prepare(file_dataset(path, "dataset.text_column=review"), tmp_path)
    assert str(error.value) == (
        f"dataset.text_column='review' is not a column of {path}; its columns: ['sentence', 'mood']"
    )


def test_one_class_is_refused_before_training(tmp_path, sst2_rows):
    positive = [row for row in sst2_rows if row[1] == "positive"]
    path = write_table(tmp_path / "positive.tsv", positive)
    with pytest.raises(EmbcompareError, match=r"dataset.label_column='mood': .* holds 1 distinct"):
        user_file.prepare(file_dataset(path), tmp_path)


def test_missing_path_and_unknown_kind_of_file_name_dataset_path(tmp_path):
    with pytest.raises(EmbcompareError, match=r"^dataset.path is required with dataset=file"):
        user_file.prepare(compose("config", ["dataset=file"]).dataset, tmp_path)
    (tmp_path / "reviews.xlsx").write_bytes(b"PK")
    with pytest.raises(EmbcompareError, match=r"^dataset.path='.*reviews.xlsx': cannot read .xlsx"):
        user_file.prepare(file_dataset(tmp_path / "reviews.xlsx"), tmp_path)
    with pytest.raises(EmbcompareError, match=r"^dataset.path='.*gone.csv': no such file"):
        user_file.prepare(file_dataset(tmp_path / "gone.csv"), tmp_path)


def test_without_sha256_a_warning_names_the_file_and_with_one_it_is_checked(
    tmp_path, sst2_rows, caplog
):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with caplog.at_level(logging.WARNING, logger="embcompare"):
        user_file.prepare(file_dataset(path), tmp_path)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{path}: no dataset.sha256 given") and digest in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embcompare"):
        user_file.prepare(file_dataset(path, f"dataset.sha256={digest}"), tmp_path)
    assert not caplog.records
    with pytest.raises(EmbcompareError, match=f"sha256 is {digest}, but dataset.sha256 is 0+;"):
        user_file.prepare(file_dataset(path, f"dataset.sha256={'0' * 64}"), tmp_path)


def test_the_file_content_enters_the_run_key_and_the_tokenized_cache(tmp_path, sst2_rows):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    overrides = ["dataset=file", f"dataset.path={path}", "dataset.text_column=sentence",
                 "dataset.label_column=mood", f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    before = keyed_config(compose("config", overrides))
    cached = load_tokenized(compose("config", overrides).dataset, tmp_path, None, tmp_path)
    write_table(path, sst2_rows[:200])  # the same path, new content
    after = keyed_config(compose("config", overrides))
    assert before["input_sha256"]["dataset.path"] != after["input_sha256"]["dataset.path"]
    assert after["input_sha256"]["dataset.path"] == hashlib.sha256(path.read_bytes()).hexdigest()
    fresh = load_tokenized(compose("config", overrides).dataset, tmp_path, None, tmp_path)
    total = sum(len(s) for s in (fresh.train, fresh.dev, fresh.test))
    assert sum(len(s) for s in (cached.train, cached.dev, cached.test)) == SST2_LINES
    assert total == 200


def test_make_data_never_looks_for_a_user_file():
    entries = fetch.collect_entries(CONF_DIR, ["dataset"])
    assert entries and all(fetch._SHA256_RE.fullmatch(e["sha256"]) for e in entries)
    assert "???" not in [e["path"] for e in entries]


def test_a_config_entry_without_sha256_is_one_line_naming_it(tmp_path):
    with pytest.raises(EmbcompareError, match=r"^file entry mine/x.txt: sha256 is missing;"):
        fetch.ensure_file({"path": "mine/x.txt", "url": None}, tmp_path, None)


# --- extra similarity benchmarks -----------------------------------------------------------


def write_pairs(path: Path, pairs: list[tuple[str, str, float]]) -> Path:
    path.write_text("".join(f"{a}\t{b}\t{score}\n" for a, b, score in pairs))
    return path


FILM_PAIRS = [("good", "great", 9), ("bad", "awful", 8.5), ("good", "bad", 1),
              ("film", "movie", 9.2), ("funny", "boring", 0.5), ("story", "plot", 8)]  # fmt: skip


def run_in_process(*args: str) -> tuple[int, str]:
    """`embcompare ARGS` in this process without Hydra's logging setup (which would close
    pytest's handlers): (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main([*args, "hydra/job_logging=none", "hydra/hydra_logging=none"])
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


def test_extra_benchmarks_are_scored_like_the_configured_ones(
    tmp_path, sst2_rows, data_dir, mirror
):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    films = write_pairs(tmp_path / "films.txt", FILM_PAIRS)
    moods = write_pairs(tmp_path / "moods.txt", [("happy", "sad", 1), ("joy", "fun", 7),
                                                   ("dull", "boring", 9)])  # fmt: skip
    code, stderr = run_in_process(
        "run", "dataset=file", f"dataset.path={path}", "dataset.text_column=sentence",
        "dataset.label_column=mood", f"similarity.extra=[{films},{moods}]", "model=bow",
        "train.n=all", "train.epochs=1", "train.min_steps=0", "train.progress=false",
        f"paths.data_dir={data_dir}", f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path / 'results'}",
    )  # fmt: skip
    assert code == 0, stderr[-3000:]
    (run_dir,) = [p.parent for p in (tmp_path / "results").rglob("metrics.json")]
    assert run_dir.name.startswith("reviews-nonstatic-nall-s1-")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_dev"] + metrics["n_test"] == SST2_LINES
    assert metrics["films_coverage"] == 1.0 and metrics["moods_coverage"] == 1.0
    assert -1.0 <= metrics["films_spearman_source"] <= 1.0  # GloVe knows every word
    assert metrics["films_seen_status"] in ("too few pairs", "ok")
    semantic = json.loads((run_dir / "semantic.json").read_text())
    scored = semantic["similarity"]["spaces"]["source"]
    assert {"films", "moods", "simlex999"} <= set(scored)
    assert scored["films"]["scored"] == len(FILM_PAIRS)
    assert metrics["cfg.similarity.extra.0"] == json.dumps(str(films))


def test_a_malformed_extra_benchmark_stops_the_run_before_training(
    tmp_path, sst2_rows, data_dir, mirror
):
    path = write_table(tmp_path / "reviews.csv", sst2_rows)
    broken = tmp_path / "broken.txt"
    broken.write_text("good\tgreat\t9\ngood great 9\n")
    common = ["run", "dataset=file", f"dataset.path={path}", "dataset.text_column=sentence",
              "dataset.label_column=mood", "model=bow", f"paths.data_dir={data_dir}",
              f"paths.mirror={mirror}", f"paths.results_dir={tmp_path / 'results'}"]  # fmt: skip
    cases = {
        f"similarity.extra=[{broken}]": f"{broken}: line 2: expected word1<TAB>word2<TAB>score",
        f"similarity.extra=[{tmp_path / 'gone.txt'}]": f"similarity.extra: {tmp_path}/gone.txt: "
        "no such file",
        f"similarity.extra={broken}": "similarity.extra=",
        f"similarity.extra=[{tmp_path / 'ws353.txt'}]": "'ws353', a name already taken",
    }
    for override, expected in cases.items():
        code, stderr = run_in_process(*common, override)
        assert code == 2, stderr[-2000:]
        assert expected in last_error_line(stderr)
    assert not list((tmp_path / "results").rglob("metrics.json"))
    assert not list((tmp_path / "results").rglob("history.csv"))  # stopped before training


# --- through the command line --------------------------------------------------------------


@pytest.mark.slow
def test_embcompare_run_on_a_csv_then_report(tmp_path, sst2_rows, data_dir, mirror):
    path = write_table(tmp_path / "reviews.csv", sst2_rows, "review", "sentiment")
    paths = [f"paths.data_dir={data_dir}", f"paths.mirror={mirror}",
             f"paths.results_dir={tmp_path / 'results'}"]  # fmt: skip
    run = run_cli(
        "run", "-m", "name=mine", "dataset=file", f"dataset.path={path}",
        "dataset.text_column=review", "dataset.label_column=sentiment", "setup=rand,static",
        "model=bow", "train.n=all", "train.epochs=2", "train.min_steps=0", "train.progress=false",
        *paths,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{path}: no dataset.sha256 given" in run.stdout + run.stderr
    runs = sorted((tmp_path / "results" / "mine" / "runs").glob("reviews-*/metrics.json"))
    assert [json.loads(m.read_text())["setup"] for m in runs] == ["rand", "static"]
    report = run_cli("report", "name=mine", *paths)
    assert report.returncode == 0, report.stderr[-3000:]
    written = (tmp_path / "results" / "mine" / "report.md").read_text()
    assert "reviews" in written
