"""The bad-input catalogue: every case gives one line naming the file, line or config key, a
non-zero exit, and no metrics.json. Config and data cases run `embcompare run` in-process and
stop before training; vectors-file and cache cases call the loaders on real GloVe rows; the few
that need a sweep, a second process or a signal are marked slow."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from embcompare import cli, stamps
from embcompare.analysis import aggregate
from embcompare.data import datasets as data
from embcompare.errors import EmbcompareError
from embcompare.vectors import pretrained as embeddings

from conftest import last_error_line

# ------------------------------------------------------------------------------------------
# helpers


def run_in_process(*args: str) -> tuple[int, str]:
    """`embcompare ARGS` in this process: (exit status, stderr).

    `run` and `evaluate` keep Hydra's logging setup off: `logging.config.dictConfig` closes
    every handler alive in the process, pytest's own included, which breaks later tests."""
    hydra_main = args[:1] in (("run",), ("evaluate",))
    quiet = ["hydra/job_logging=none", "hydra/hydra_logging=none"] if hydra_main else []
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main([*args, *quiet])
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


@pytest.fixture
def results(tmp_path) -> Path:
    return tmp_path / "results"


def quick_run(results: Path, data_dir: Path, mirror: Path, *overrides: str) -> tuple[int, str]:
    """A smoke run (SST-2, bow, GloVe 50d) with `overrides`; bad ones stop it before training."""
    return run_in_process(
        "run",
        "experiment=smoke",
        "setup=rand",
        "train.n=100",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={results}",
        *overrides,
    )


def assert_failed_cleanly(code: int, stderr: str, results: Path, *named: str) -> str:
    assert code == 2, stderr[-2000:]
    line = last_error_line(stderr)
    assert "Traceback" not in stderr
    for text in named:
        assert text in line, line
    assert not list(results.rglob("metrics.json"))
    print(line)  # the catalogue's messages: pytest -rP tests/test_bad_inputs.py
    return line


# ------------------------------------------------------------------------------------------
# config values: one line naming the key and the allowed range, exit 2, an error.json


CONFIG_CASES = [
    ("train.batch_size=-1", "train.batch_size=-1 must be a positive integer"),
    ("train.batch_size=0", "train.batch_size=0 must be a positive integer"),
    ("train.epochs=0", "train.epochs=0 must be a positive integer"),
    ("train.patience=-1", "train.patience=-1 must be a non-negative integer"),
    ("train.eval_every_steps=0", "train.eval_every_steps=0 must be a positive integer"),
    ("dataset.max_length=0", "dataset.max_length=0 must be a positive integer"),
    ("dataset.max_length=null", "dataset.max_length=None must be a positive integer"),
    ("train.optimizer.learning_rate=-0.1", "learning_rate=-0.1 must be a number > 0"),
    ("train.optimizer.learning_rate=0", "learning_rate=0 must be a number > 0"),
    ("train.optimizer.learning_rate=nan", "learning_rate=nan must be a number > 0"),
    ("seed=-1", "seed=-1 must be a non-negative integer"),
    ("seed=abc", "seed='abc' must be a non-negative integer"),
    ("seed=1.5", "seed=1.5 must be a non-negative integer"),
    ("threads=0", "threads=0 must be a positive integer"),
    ("train.n=0", "train.n=0 must be a positive integer or 'all'"),
    ("train.n=-5", "train.n=-5 must be a positive integer or 'all'"),
    ("train.n=abc", "train.n='abc' must be a positive integer or 'all'"),
    ("model=cnn model.filters=0", "model.filters=0 must be a positive integer"),
    ("model=cnn model.windows=[0,3]", "model.windows=[0, 3] must be a non-empty list"),
    ("model.hidden=0", "model.hidden=0 must be a positive integer"),
    ("model.dropout=1.0", "model.dropout=1.0 must be a number in [0, 1)"),
    ("vocab.min_count=0", "vocab.min_count=0 must be a positive integer"),
    ("dataset.split.dev_fraction=1.5", "dataset.split.dev_fraction=1.5 must be a number in (0, 1)"),
    ("dataset.split.test_fraction=0", "dataset.split.test_fraction=0 must be a number in (0, 1)"),
    ("embedding.dim=0", "embedding.dim=0 must be a positive integer or null"),
    ("+unused=1", "+unused=1: no setting 'unused' is read by embcompare"),
    ("+dataset.typo=1", "+dataset.typo=1: no setting 'dataset.typo' is read"),
    (
        "dataset=mr dataset.split.policy=kfold dataset.split.fold=10",
        "dataset.split.fold=10 must be in [0, 10)",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_value_stops_before_training(overrides, message, results, data_dir, mirror):
    code, stderr = quick_run(results, data_dir, mirror, *overrides.split())
    assert_failed_cleanly(code, stderr, results, message)
    (error_file,) = results.rglob("error.json")
    recorded = json.loads(error_file.read_text())
    assert message in recorded["message"] and recorded["type"] == "EmbcompareError"
    assert (error_file.parent / recorded["traceback"]).is_file()
    failures = aggregate.collect_failures(error_file.parent.parent)
    assert list(failures["error"]) == [recorded["message"]]


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "", "-x"])
def test_unsafe_name_is_refused_before_any_directory_is_made(name, tmp_path, data_dir, mirror):
    results = tmp_path / "deep" / "results"
    code, stderr = quick_run(results, data_dir, mirror, f"name={name}")
    assert_failed_cleanly(code, stderr, results, f"name={name!r} must be one path part")
    assert sorted(p.name for p in tmp_path.rglob("*")) in ([], ["deep", "results"])


def test_report_refuses_an_unsafe_experiment_name(tmp_path):
    code, stderr = run_in_process("report", "name=../x", f"paths.results_dir={tmp_path}")
    assert_failed_cleanly(code, stderr, tmp_path, "name='../x' must be one path part")


# ------------------------------------------------------------------------------------------
# samples and datasets: at least 2 classes, enough examples per class for the split


def test_a_one_class_training_sample_is_refused(results, data_dir, mirror):
    code, stderr = quick_run(results, data_dir, mirror, "train.n=1")
    line = assert_failed_cleanly(code, stderr, results, "train.n=1:", "at least 2 classes")
    assert "training sample has 1 example(s) of class(es) ['positive']" in line


def user_dataset(tmp_path: Path, lines: list[str], **split) -> Path:
    """A user's dataset: a label_text file in a data dir and its config in a conf dir."""
    data_dir, conf = tmp_path / "userdata", tmp_path / "conf" / "dataset"
    data_dir.mkdir(parents=True)
    conf.mkdir(parents=True)
    text = "".join(f"{line}\n" for line in lines).encode()
    (data_dir / "mine.txt").write_bytes(text)
    config = {
        "name": "mine",
        "format": "label_text",
        "encoding": "utf-8",
        "lowercase": True,
        "strip_html": False,
        "labels": ["negative", "positive"],
        "max_length": 400,
        "files": {
            "all": {
                "path": "mine.txt",
                "url": None,
                "sha256": hashlib.sha256(text).hexdigest(),
                "split": "all",
            }
        },
        "split": {
            "policy": "holdout",
            "test_fraction": 0.2,
            "dev_fraction": 0.2,
            "folds": 5,
            "fold": 0,
            "seed": 0,
            **split,
        },
    }
    (conf / "mine.yaml").write_text(OmegaConf.to_yaml(config))
    return data_dir


def user_run(tmp_path: Path, data_dir: Path, *overrides: str) -> tuple[int, str]:
    return run_in_process(
        "run",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "dataset=mine",
        "model=bow",
        "train.n=all",
        "train.progress=false",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.results_dir={tmp_path / 'results'}",
        *overrides,
    )


def test_a_one_class_dataset_is_refused(tmp_path):
    data_dir = user_dataset(tmp_path, [f"0 text number {i}" for i in range(30)])
    code, stderr = user_run(tmp_path, data_dir)
    assert_failed_cleanly(
        code, stderr, tmp_path, "dataset mine (mine.txt)", "class(es) ['negative']", "2 classes"
    )


def test_a_class_with_one_example_is_refused_not_a_traceback(tmp_path):
    lines = [f"0 negative text {i}" for i in range(20)] + ["1 the only positive text"]
    data_dir = user_dataset(tmp_path, lines)
    code, stderr = user_run(tmp_path, data_dir)
    assert_failed_cleanly(
        code, stderr, tmp_path, "dataset mine (mine.txt)", "class 'positive' has 1 example(s)"
    )


def test_kfold_needs_a_class_in_every_fold(tmp_path):
    lines = [f"0 negative text {i}" for i in range(20)] + [f"1 pos {i}" for i in range(3)]
    data_dir = user_dataset(tmp_path, lines, policy="kfold")
    code, stderr = user_run(tmp_path, data_dir)
    assert_failed_cleanly(code, stderr, tmp_path, "class 'positive' has 3", "the 5 the split")


@pytest.mark.slow
def test_a_200000_token_line_is_cut_to_max_length_and_counted(tmp_path):
    huge = "1 " + " ".join(f"w{i % 5000}" for i in range(200_000))
    lines = [f"{i % 2} short text {i}" for i in range(59)] + [huge]
    data_dir = user_dataset(tmp_path, lines)
    code, stderr = user_run(
        tmp_path, data_dir, "train.epochs=1", "train.min_steps=0", "semantic.enabled=false"
    )
    assert code == 0, stderr[-3000:]
    (metrics_file,) = (tmp_path / "results").rglob("metrics.json")
    assert json.loads(metrics_file.read_text())["truncated_texts"] == 1


def test_an_unknown_text_encoding_names_the_key(tmp_path):
    data_dir = user_dataset(tmp_path, ["0 a", "1 b"] * 10)
    code, stderr = user_run(tmp_path, data_dir, "dataset.encoding=klingon")
    assert_failed_cleanly(code, stderr, tmp_path, "dataset.encoding='klingon' is not a known")


def test_an_unwritable_cache_dir_suggests_paths_cache_dir(tmp_path):
    data_dir = user_dataset(tmp_path, ["0 a", "1 b"] * 10)
    (tmp_path / "cache").write_text("a file where the cache directory should be\n")
    code, stderr = user_run(tmp_path, data_dir)
    assert_failed_cleanly(code, stderr, tmp_path, "cache", "set paths.cache_dir=")


# ------------------------------------------------------------------------------------------
# vectors files: real GloVe rows written in each format, then damaged


@pytest.fixture(scope="module")
def glove_rows():
    from embcompare.run import CONF_DIR

    cfg = OmegaConf.load(Path(CONF_DIR) / "embedding" / "glove-6b-50d.yaml")
    source = embeddings.load_pretrained(cfg, Path("unused"))
    return source.words[:6], np.asarray(source.vectors[:6], dtype=np.float32)


def text_lines(words, vectors) -> list[str]:
    return [
        w + " " + " ".join(f"{x:.6f}" for x in row) for w, row in zip(words, vectors, strict=True)
    ]


def load(path: Path, file_format: str, tmp_path: Path, **extra):
    cfg = {"name": "user", "format": file_format, "path": str(path), **extra}
    return embeddings.load_pretrained(cfg, tmp_path / "cache")


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def word2vec_text(tmp_path, lines, name="v.txt") -> Path:
    dim = len(lines[0].split()) - 1
    return write(tmp_path / name, [f"{len(lines)} {dim}", *lines])


def refused(path, file_format, tmp_path, pattern, **extra) -> str:
    with pytest.raises(EmbcompareError, match=pattern) as caught:
        load(path, file_format, tmp_path, **extra)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert not list((tmp_path / "cache").rglob("*.tmp*"))  # no staging dir left behind
    print(message)
    return message


def test_nan_in_a_vectors_file_names_the_line(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[3] = lines[3].rsplit(" ", 1)[0] + " nan"
    refused(word2vec_text(tmp_path, lines), "word2vec_text", tmp_path, r"line 5: word .* finite")


def test_inf_in_a_glove_file_names_the_line(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[0] = lines[0].rsplit(" ", 1)[0] + " -inf"
    refused(write(tmp_path / "g.txt", lines), "glove_text", tmp_path, r"line 1: .* not a finite")


def test_a_value_beyond_float32_names_the_line(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[2] = lines[2].rsplit(" ", 1)[0] + " 1e40"
    refused(write(tmp_path / "g.txt", lines), "glove_text", tmp_path, r"line 3: .*3\.4e38")


def test_a_glove_file_declared_word2vec_text_names_the_likely_format(tmp_path, glove_rows):
    path = write(tmp_path / "g.txt", text_lines(*glove_rows))
    refused(path, "word2vec_text", tmp_path, "line 1: .*set embedding.format=glove_text")


def test_a_glove_file_declared_fasttext_names_the_likely_format(tmp_path, glove_rows):
    path = write(tmp_path / "g.vec", text_lines(*glove_rows))
    refused(path, "fasttext_vec", tmp_path, "line 1: .*set embedding.format=glove_text")


def test_a_word2vec_header_in_a_glove_file_names_the_likely_format(tmp_path, glove_rows):
    path = word2vec_text(tmp_path, text_lines(*glove_rows))
    refused(path, "glove_text", tmp_path, "line 1: '6 50' is a word2vec header.*word2vec_text")


def test_a_glove_file_declared_word2vec_binary_names_the_likely_format(tmp_path, glove_rows):
    path = write(tmp_path / "g.txt", text_lines(*glove_rows))
    refused(path, "word2vec_binary", tmp_path, "line 1: .*set embedding.format=glove_text")


def word2vec_binary(path: Path, words, vectors) -> Path:
    with open(path, "wb") as handle:
        handle.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        for word, row in zip(words, vectors, strict=True):
            handle.write(word.encode() + b" " + struct.pack(f"{len(row)}f", *row))
    return path


def test_a_binary_file_declared_text_names_the_likely_format(tmp_path, glove_rows):
    path = word2vec_binary(tmp_path / "v.bin", *glove_rows)
    refused(path, "word2vec_text", tmp_path, r"line 2: .*word2vec_binary")


def test_nan_in_a_binary_file_names_the_vector(tmp_path, glove_rows):
    words, vectors = glove_rows
    vectors = vectors.copy()
    vectors[4, 7] = np.nan
    path = word2vec_binary(tmp_path / "v.bin", words, vectors)
    refused(path, "word2vec_binary", tmp_path, f"vector 5 \\(word '{words[4]}'\\) .* finite")


@pytest.mark.parametrize("content", ["", "\n"], ids=["empty", "blank-first-line"])
def test_an_empty_vectors_file_says_so(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    refused(path, "word2vec_text", tmp_path, "file is (empty|blank on line 1)")


def test_an_empty_binary_file_says_so(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    refused(path, "word2vec_binary", tmp_path, "file is empty")


def test_a_header_only_file_says_so(tmp_path):
    path = write(tmp_path / "h.txt", ["0 50"])
    refused(path, "word2vec_text", tmp_path, "no vectors after the header")


def test_a_truncated_word2vec_text_file_names_the_counts(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    path = write(tmp_path / "t.txt", [f"{len(lines) + 3} 50", *lines])
    refused(path, "word2vec_text", tmp_path, "declares 9 words but the file has 6")


def test_a_short_line_names_the_line_and_counts(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[1] = lines[1].rsplit(" ", 2)[0]
    refused(
        write(tmp_path / "g.txt", lines), "glove_text", tmp_path, "line 2: expected a word and 50"
    )


def test_a_non_number_names_the_line_and_value(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[4] = lines[4].replace(" ", " zero ", 1).rsplit(" ", 1)[0]
    path = word2vec_text(tmp_path, lines)
    refused(path, "word2vec_text", tmp_path, r"line 6: not a number \('zero'\)")


def test_invalid_utf8_names_the_line(tmp_path, glove_rows):
    path = write(tmp_path / "g.txt", text_lines(*glove_rows))
    raw = path.read_bytes().split(b"\n")
    raw[2] = b"\xff\xfe" + raw[2]
    path.write_bytes(b"\n".join(raw))
    refused(path, "glove_text", tmp_path, "line 3: bytes are not valid UTF-8")


def test_a_vectors_file_of_another_dimension_names_the_key(tmp_path, glove_rows):
    path = write(tmp_path / "g.txt", text_lines(*glove_rows))
    refused(path, "glove_text", tmp_path, "dimension 50, but embedding.dim=300", dim=300)


def test_a_missing_vectors_file_names_the_key(tmp_path):
    refused(tmp_path / "nowhere.vec", "fasttext_vec", tmp_path, "embedding.path=.*no such")


def test_a_repeated_word_keeps_its_first_vector_with_a_counted_warning(
    tmp_path, glove_rows, caplog
):
    words, vectors = glove_rows
    lines = text_lines(words, vectors)
    lines.insert(4, text_lines([words[1]], vectors[5:6])[0])  # words[1] again, other numbers
    path = word2vec_text(tmp_path, lines)
    with caplog.at_level(logging.WARNING, logger="embcompare"):
        source = load(path, "word2vec_text", tmp_path)
    assert source.words == list(words)
    np.testing.assert_allclose(source.vectors[1], vectors[1], atol=1e-6)
    assert f"{path}: 1 repeated word(s); each keeps its first vector" in caplog.text
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


@pytest.mark.parametrize("file_format", ["glove_text", "word2vec_binary"])
def test_a_gzipped_vectors_file_is_read_transparently(tmp_path, glove_rows, file_format):
    plain = tmp_path / "plain"
    if file_format == "glove_text":
        write(plain, text_lines(*glove_rows))
    else:
        word2vec_binary(plain, *glove_rows)
    packed = tmp_path / "vectors.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    source = load(packed, file_format, tmp_path)
    assert source.words == list(glove_rows[0])
    np.testing.assert_allclose(source.vectors, glove_rows[1], atol=1e-6)


def test_nan_vectors_stop_a_run_before_training(tmp_path, glove_rows, data_dir, mirror):
    lines = text_lines(*glove_rows)
    lines[5] = lines[5].rsplit(" ", 1)[0] + " NaN"
    path = write(tmp_path / "g.txt", lines)
    results = tmp_path / "results"
    code, stderr = quick_run(
        results, data_dir, mirror, "setup=static", "embedding=vectors-file",
        "embedding.format=glove_text", f"embedding.path={path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert_failed_cleanly(code, stderr, results, f"{path}: line 6: word", "not a finite")
    assert len(list(results.rglob("error.json"))) == 1


def test_nan_vectors_stop_evaluate_instead_of_scoring_zero(tmp_path, glove_rows):
    lines = text_lines(*glove_rows)
    lines[0] = lines[0].rsplit(" ", 1)[0] + " nan"
    path = write(tmp_path / "g.txt", lines)
    code, stderr = run_in_process(
        "evaluate", f"vectors={path}", f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.results_dir={tmp_path / 'results'}",
    )  # fmt: skip
    assert_failed_cleanly(code, stderr, tmp_path, f"{path}: line 1: word", "not a finite")


# ------------------------------------------------------------------------------------------
# caches: damaged ones are rebuilt with a warning; a planted pickle never runs


def cached_glove(tmp_path, glove_rows) -> tuple[Path, Path]:
    path = write(tmp_path / "g.txt", text_lines(*glove_rows))
    load(path, "glove_text", tmp_path)
    embeddings.forget_loaded()  # what a new process starts with
    (directory,) = (tmp_path / "cache" / "vectors").iterdir()
    return path, directory


@pytest.mark.parametrize("damage", ["truncate", "garble", "reorder_words", "drop_manifest"])
def test_a_damaged_vectors_cache_is_rebuilt_with_a_warning(tmp_path, glove_rows, caplog, damage):
    path, directory = cached_glove(tmp_path, glove_rows)
    array, words = directory / "vectors.npy", directory / "words.txt"
    if damage == "truncate":
        array.write_bytes(array.read_bytes()[:-100])
    elif damage == "garble":
        raw = bytearray(array.read_bytes())
        raw[-20:-10] = b"\x7f" * 10
        array.write_bytes(bytes(raw))
    elif damage == "reorder_words":
        listed = words.read_text().split("\n")
        words.write_text("\n".join([listed[1], listed[0], *listed[2:]]))
    else:
        (directory / stamps.MANIFEST).unlink()
    with caplog.at_level(logging.WARNING, logger="embcompare"):
        source = load(path, "glove_text", tmp_path)
    assert f"vectors cache {directory}" in caplog.text and "rebuilding it" in caplog.text
    assert source.words == list(glove_rows[0])
    np.testing.assert_allclose(source.vectors, glove_rows[1], atol=1e-6)
    assert stamps.manifest_problem(directory) is None


class Planted:
    """Unpickling this writes a file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "a planted pickle ran\n"))


def test_a_planted_pickle_in_the_tokenized_cache_never_runs_and_is_rebuilt(
    tmp_path, data_dir, mirror, caplog
):
    from conftest import load_conf

    cfg = load_conf("dataset", "trec")
    first = data.load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    data._tokenized_files.cache_clear()
    (directory,) = (tmp_path / "tokenized").iterdir()
    marker = tmp_path / "pwned"
    planted = pickle.dumps(Planted(marker))
    for parquet in directory.glob("*.parquet"):
        parquet.write_bytes(planted)
    # also where the joblib cache used to keep its pickles
    old = tmp_path / "tokenized" / "joblib" / "embcompare" / "data" / "_read_and_tokenize"
    old.mkdir(parents=True)
    (old / "output.pkl").write_bytes(planted)
    with caplog.at_level(logging.WARNING, logger="embcompare"):
        again = data.load_tokenized(cfg, data_dir, str(mirror), tmp_path)
    assert not marker.exists()
    assert f"tokenized cache {directory}" in caplog.text and "rebuilding it" in caplog.text
    assert again.train.tokens == first.train.tokens and again.test.texts == first.test.texts
    assert stamps.manifest_problem(directory) is None


# ------------------------------------------------------------------------------------------
# results: a malformed metrics.json is named


def test_a_malformed_metrics_file_is_named_by_report_and_aggregate(tmp_path):
    run_dir = tmp_path / "smoke" / "runs" / "sst2-rand-n100-s1-0123456789"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text('{"test_accuracy": 0.5,')
    with pytest.raises(EmbcompareError, match=f"{run_dir / 'metrics.json'}: not valid JSON"):
        aggregate.collect_runs(run_dir.parent)
    code, stderr = run_in_process("report", "experiment=smoke", f"paths.results_dir={tmp_path}")
    assert code == 2 and "Traceback" not in stderr
    assert f"{run_dir / 'metrics.json'}: not valid JSON" in last_error_line(stderr)


def test_failures_are_collected_from_error_json_and_legacy_error_txt(tmp_path):
    for name, file, content in (
        ("new", "error.json", json.dumps({"type": "X", "message": "it broke"})),
        ("old", "error.txt", "it broke before\n"),
        ("garbled", "error.json", "{"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_text(content)
    failures = aggregate.collect_failures(tmp_path).set_index("run_dir")["error"]
    assert failures["new"] == "it broke" and failures["old"] == "it broke before"
    assert failures["garbled"].endswith("error.json is unreadable")


def test_an_unexpected_exception_is_recorded_with_its_traceback(tmp_path):
    from embcompare.run import describe_failure, record_failure

    try:
        {}["missing key"]
    except KeyError as error:
        message = describe_failure(error, tmp_path)
        record_failure(tmp_path, error, message)
    assert message.startswith(f"{tmp_path}: unexpected KeyError: 'missing key' (traceback in")
    recorded = json.loads((tmp_path / "error.json").read_text())
    assert recorded == {"type": "KeyError", "message": message, "traceback": "traceback.txt"}
    assert "Traceback" in (tmp_path / "traceback.txt").read_text()
