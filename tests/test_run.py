"""End-to-end runs through the real CLI: a generated tiny dataset, a real MR slice, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from embcompare.data.fetch import sha256_of

from conftest import last_error_line, run_cli

POSITIVE = ["good", "great", "fine", "wonderful", "superb", "lovely", "excellent", "enjoyable"]
NEGATIVE = ["bad", "awful", "poor", "terrible", "boring", "dull", "horrible", "tedious"]


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A label-text dataset whose label is readable from its words, written by the test."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(240):
        words = POSITIVE if i % 2 else NEGATIVE
        sentence = " ".join(rng.choice(words, 4)) + " film"
        lines.append(f"{i % 2} {sentence}")
    (tmp_path / "tiny.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def tiny_overrides(data: Path, *extra: str) -> list[str]:
    return [
        "dataset=mr",
        "dataset.encoding=utf-8",
        "dataset.files.all.path=tiny.txt",
        f"dataset.files.all.sha256={sha256_of(data / 'tiny.txt')}",
        "dataset.files.all.url=http://127.0.0.1:9/tiny.txt",
        f"paths.data_dir={data}",
        "paths.mirror=null",
        f"paths.results_dir={data / 'results'}",
        "setup=nonstatic",
        "model=bow",
        "train.epochs=3",
        "train.min_steps=0",
        "train.eval_every_steps=1",
        "train.progress=false",
        *extra,
    ]


def finished_runs(results: Path) -> list[Path]:
    return sorted(results.glob("**/metrics.json"))


@pytest.mark.slow
def test_tiny_generated_dataset_runs_end_to_end_and_is_not_redone(tiny_data):
    done = run_cli("run", *tiny_overrides(tiny_data))
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics_file,) = finished_runs(tiny_data / "results")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["n_train"] + metrics["n_dev"] + metrics["n_test"] == 240
    assert metrics["test_accuracy"] >= 0.9  # the words give the label away
    assert metrics["coverage_types"] == 1.0  # every word is in GloVe
    run_dir = metrics_file.parent
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,steps,train_loss,dev_accuracy") and len(history) == 4
    saved = np.load(run_dir / "embedding.npz")
    assert saved["vectors"].shape == (len(saved["words"]), 50)
    assert {"good", "bad", "film"} <= set(saved["words"].tolist())

    again = run_cli("run", *tiny_overrides(tiny_data))
    assert again.returncode == 0
    assert "already finished, skipping" in again.stdout + again.stderr
    assert finished_runs(tiny_data / "results") == [metrics_file]


@pytest.mark.slow
def test_real_mr_slice_of_200_examples(tmp_path, data_dir, mirror):
    result = run_cli(
        "run",
        "dataset=mr",
        "setup=static",
        "train.n=200",
        "train.epochs=2",
        "train.min_steps=0",
        "train.eval_every_steps=1",
        "train.progress=false",
        f"paths.data_dir={data_dir}",
        f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = finished_runs(tmp_path)
    metrics = json.loads(metrics_file.read_text())
    assert metrics["n_train"] == 200 and metrics["epochs"] == 2
    assert metrics["n_test"] == 1067 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["coverage_tokens"] > 0.95 and metrics["embedding_dim"] == 50
    assert "test accuracy" in result.stdout + result.stderr


def write_vectors(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


BAD_INPUTS = {
    "n_too_large": (["train.n=5000"], r"train.n=5000 exceeds the \d+ training examples"),
    "sha_mismatch": (["dataset.files.all.sha256=" + "0" * 64], r"tiny.txt.*sha256"),
    "missing_file": (["dataset.files.all.path=absent.txt"], r"absent.txt"),
    "malformed_vectors": (
        ["embedding=vectors-file", "embedding.format=word2vec_text", "embedding.path={vectors}"],
        r"vectors.txt: line 3: not a number",
    ),
    "wrong_dimension": (
        [
            "embedding=vectors-file",
            "embedding.format=glove_text",
            "embedding.path={short}",
            "embedding.dim=50",
        ],
        r"dimension 2, but embedding.dim=50",
    ),
    "empty_dataset": (
        ["dataset.files.all.path=empty.txt", "dataset.files.all.sha256={empty_sha}"],
        r"no all examples in .*empty.txt",
    ),
    "not_utf8": (
        ["dataset.files.all.path=latin.txt", "dataset.files.all.sha256={latin_sha}"],
        r"latin.txt: line 2: bytes are not valid utf-8 .*; fix dataset.encoding",
    ),
    "label_outside_set": (
        ["dataset.files.all.path=labels.txt", "dataset.files.all.sha256={labels_sha}"],
        r"labels.txt: line 3: label '7' is not one of the 2 declared in dataset.labels",
    ),
}


def write_bad_inputs(data: Path) -> dict:
    """The broken files of BAD_INPUTS, and their sha256, by the names its overrides use."""
    (data / "empty.txt").write_text("")
    (data / "latin.txt").write_bytes(b"0 a fine film\n1 caf\xe9 society\n")
    (data / "labels.txt").write_text("0 a fine film\n1 a good one\n7 not a label\n")
    return {
        "vectors": write_vectors(data / "vectors.txt", ["2 2", "good 0.1 0.2", "bad 0.1 x"]),
        "short": write_vectors(data / "short.txt", ["good 0.1 0.2", "bad 0.3 0.4"]),
        **{f"{name}_sha": sha256_of(data / f"{name}.txt") for name in ("empty", "latin", "labels")},
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_error_and_no_metrics(tiny_data, case):
    overrides, pattern = BAD_INPUTS[case]
    values = write_bad_inputs(tiny_data)
    result = run_cli("run", *tiny_overrides(tiny_data, *(o.format(**values) for o in overrides)))
    assert result.returncode == 2, result.stderr[-3000:]
    import re

    assert re.search(pattern, last_error_line(result.stderr)), result.stderr[-2000:]
    assert finished_runs(tiny_data / "results") == []


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_one_line_in_process(tiny_data, tmp_path, case):
    """The fast twin of the CLI test above: the same error, before any metrics exist."""
    from embcompare import run
    from embcompare.config import compose
    from embcompare.errors import EmbcompareError

    overrides, pattern = BAD_INPUTS[case]
    values = write_bad_inputs(tiny_data)
    cfg = compose("config", tiny_overrides(tiny_data, *(o.format(**values) for o in overrides)))
    with pytest.raises(EmbcompareError, match=pattern) as raised:
        run.execute(cfg, tmp_path)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "metrics.json").exists()


def test_unknown_config_option_is_refused_by_hydra(tiny_data):
    result = run_cli("run", *tiny_overrides(tiny_data, "setup=frozenish"))
    assert result.returncode != 0
    assert "setup/frozenish" in result.stderr or "frozenish" in result.stderr
    assert finished_runs(tiny_data / "results") == []


def test_run_key_follows_what_is_computed_not_where_or_how_it_is_reported():
    from omegaconf import OmegaConf

    from embcompare.config import compose, run_key

    def key_of(*overrides: str) -> str:
        cfg = compose("config", ["experiment=kim2014", *overrides])
        OmegaConf.set_struct(cfg, False)
        return run_key(_root_=cfg)

    base = key_of()
    assert base.startswith("mr-nonstatic-nall-s0-")
    assert key_of("report_paper=null", "paths.results_dir=/elsewhere") == base
    assert key_of("dataset.split.fold=1") != base  # fold and seed move together
    assert key_of("dataset.split.fold=1").startswith("mr-nonstatic-nall-s1-")
    # vectors that live in the data dir key the same wherever the data dir is
    in_cache = "embedding=word2vec-sg-imdb-300d"
    assert key_of(in_cache, "paths.data_dir=/a") == key_of(in_cache, "paths.data_dir=/b")
    assert key_of(in_cache) != base


@pytest.mark.slow
def test_googlenews_config_runs_on_a_small_file_in_its_binary_format(tmp_path, data_dir, mirror):
    """Kim's vectors are `embedding=word2vec-googlenews embedding.path=...` away: a 300-d
    word2vec binary file of a few TREC words stands in for the 3.6 GB original."""
    from gensim.models import KeyedVectors

    words = ["What", "is", "the", "How", "many", "Who", "city", "name", "of", "a"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32)
    keyed = KeyedVectors(300)
    keyed.add_vectors(words, vectors)
    path = tmp_path / "GoogleNews-small.bin"
    keyed.save_word2vec_format(str(path), binary=True)
    result = run_cli(
        "run", "dataset=trec", "setup=static", "embedding=word2vec-googlenews",
        f"embedding.path={path}", "train.n=60", "train.epochs=1", "train.min_steps=0",
        "semantic.enabled=false", f"paths.data_dir={data_dir}", f"paths.mirror={mirror}",
        f"paths.results_dir={tmp_path / 'results'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = (tmp_path / "results" / "adhoc" / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert (metrics["embedding"], metrics["embedding_dim"]) == ("word2vec-googlenews", 300)
    assert 0 < metrics["coverage_tokens"] < 1  # TREC keeps case: 'What' is found
    saved = np.load(metrics_file.parent / "embedding.npz")
    row = list(saved["words"]).index("What")
    np.testing.assert_allclose(saved["vectors"][row], vectors[0], rtol=1e-6)  # static: unchanged
