"""Speed figures from one run, side by side: `make bench` (python benchmarks/bench.py [--quick]).

* Bag-of-embeddings epoch time for static, nonstatic and rand, with the row-sparse optimizer
  (train.optimizer.sparse=true) and with Keras's dense Adam, at 20k x 300 and 100k x 300, on
  synthetic token data shaped like real data (Zipf-distributed words, ~50 tokens a sentence,
  10,000 sentences, batches of 50), as ratios to static.
* Kim CNN epoch time on real SST-2 with every batch padded to the dataset's longest sentence,
  to its own longest sentence (what training does), and with length-bucketed batches; its
  convolutions alone at a training batch's shape, against a plain matmul of the same size.
* Load time of GloVe 6B 50d: from its package, and as a GloVe text file through gensim (first
  load parses and caches, the second reads the cache).
* Peak resident memory of the process.
* Nonstatic / static on the bag of embeddings, measured side by side: the models' epochs
  alternate, round after round, so that load from other work on the host hits them alike;
  the median ratio and its range over rounds say how noisy the figure is. Beside it the
  gradient-only floor, lazy Adam's update split into its ops, and Adadelta's fused kernel.
* Sweeps at 1 and N worker processes (`make sweep N_JOBS=...`): wall time, runs per hour and
  the speed-up, for the smoke experiment and a slice of the learning curve.
* Per-run overhead: the import in a fresh process, and each stage of a tiny run done twice in
  one process (the second is what a run costs in a reused worker).

Epoch times are the best of a few epochs after a warm-up (tracing excluded), training steps
only: no dev evaluation. The table goes to stdout, the figures to results/bench/bench.json.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the table
os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the figures

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from embcompare.config import compose  # noqa: E402
from embcompare.data import datasets as data  # noqa: E402
from embcompare.data import text  # noqa: E402
from embcompare.data.fetch import data_dir_from  # noqa: E402
from embcompare.models import classifier as model  # noqa: E402
from embcompare.run import use_threads  # noqa: E402
from embcompare.training import loop as train  # noqa: E402
from embcompare.vectors import pretrained as embeddings  # noqa: E402

BATCH_SIZE = 50
SENTENCE_LENGTH = 50
EMBEDDING_DIM = 300
SEED = 1


def conf(group: str, name: str):
    """A group option as the run composes it (an option may extend another via defaults)."""
    return compose("config", [f"{group}={name}"])[group]


def optimizer_config(sparse: bool):
    return OmegaConf.merge(conf("train", "default").optimizer, {"sparse": sparse})


# --- timing ----------------------------------------------------------------------------------


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def epoch_seconds(
    classifier: keras.Model,
    sparse: bool,
    encoded: train.Encoded,
    epochs: int,
    min_length: int,
    bucket_batches: int = 0,
) -> float:
    """Best epoch time over `epochs` timed epochs, after a warm-up that traces the step."""
    step = train.make_train_step(classifier, train.make_optimizer(optimizer_config(sparse)))
    rng = np.random.default_rng(SEED)
    # Tracing happens on the first batches (once more when the optimizer builds its variables
    # and once when the batch length first changes); twenty batches cover it.
    warm_up = train.Encoded(encoded.ids[: 20 * BATCH_SIZE], encoded.labels[: 20 * BATCH_SIZE])
    train.train_epoch(step, warm_up, BATCH_SIZE, min_length, rng, bucket_batches)
    return min(
        seconds(
            lambda: train.train_epoch(step, encoded, BATCH_SIZE, min_length, rng, bucket_batches)
        )
        for _ in range(epochs)
    )


def gradient_only_seconds(classifier: keras.Model, encoded: train.Encoded, epochs: int) -> float:
    """Best epoch time of a step that computes the embedding gradient but does not apply it
    (gradient_only_step): the floor under every row-sparse update."""
    step = gradient_only_step(classifier)
    rng = np.random.default_rng(SEED)
    warm_up = train.Encoded(encoded.ids[: 20 * BATCH_SIZE], encoded.labels[: 20 * BATCH_SIZE])
    train.train_epoch(step, warm_up, BATCH_SIZE, 1, rng)
    return min(
        seconds(lambda: train.train_epoch(step, encoded, BATCH_SIZE, 1, rng)) for _ in range(epochs)
    )


def gradient_only_step(classifier: keras.Model):
    """A step that computes the embedding gradient but does not apply it.

    This is what a trained embedding costs before any optimizer touches it. The gradient's
    values are summed into the returned loss (times zero) so that TensorFlow cannot prune
    their computation.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = train.make_optimizer(optimizer_config(True))
    (embedding,) = [layer.embeddings for layer in model.embedding_layers(classifier)]
    others = [w for w in classifier.trainable_weights if w is not embedding]

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, classifier(x, training=True))
        embedding_gradient, *gradients = tape.gradient(loss, [embedding, *others])
        optimizer.apply(gradients, others)
        return loss + 0.0 * tf.reduce_sum(embedding_gradient.values)

    return step


def fresh_model(cfg_model, matrix: np.ndarray, trainable: bool) -> keras.Model:
    """A classifier as run.py builds one; the previous one's memory is released first."""
    keras.backend.clear_session()
    gc.collect()
    train.seed_everything(SEED)
    return model.build_model(cfg_model, [matrix], [trainable], 2)


# --- bag of embeddings on synthetic data ----------------------------------------------------


def synthetic_tokens(vocab_size: int, examples: int, seed: int = SEED) -> train.Encoded:
    """Token ids whose frequencies fall off as 1/rank (Zipf, like words), ~50 per sentence.

    Rows 0 and 1 (padding, unknown) are not drawn, as in real data after tokenizing.
    """
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.normal(SENTENCE_LENGTH, 10, examples).round(), 5, 100).astype(int)
    ranks = np.arange(1, vocab_size - 1)
    tokens = rng.choice(ranks + 1, size=lengths.sum(), p=(1 / ranks) / (1 / ranks).sum())
    ids = np.split(tokens.astype(np.int32), np.cumsum(lengths)[:-1])
    return train.Encoded(ids, rng.integers(0, 2, examples))


def bow_matrices(vocab_size: int) -> dict[str, np.ndarray]:
    """Stand-ins for pretrained rows (static, nonstatic) and Kim's uniform rows (rand)."""
    rng = np.random.default_rng(SEED)
    pretrained = rng.normal(0, 0.4, (vocab_size, EMBEDDING_DIM)).astype(np.float32)
    uniform = rng.uniform(-0.7, 0.7, (vocab_size, EMBEDDING_DIM)).astype(np.float32)
    return {"static": pretrained, "nonstatic": pretrained, "rand": uniform}


def bench_bow(vocab_sizes: list[int], examples: int, epochs: int) -> list[dict]:
    rows = []
    for vocab_size in vocab_sizes:
        encoded, matrices = synthetic_tokens(vocab_size, examples), bow_matrices(vocab_size)
        for setup, matrix in matrices.items():
            row = {"vocab_size": vocab_size, "setup": setup}
            for sparse in (True, False):
                classifier = fresh_model(conf("model", "bow"), matrix, setup != "static")
                key = "sparse_s" if sparse else "dense_s"
                row[key] = epoch_seconds(classifier, sparse, encoded, epochs, min_length=1)
                progress(f"bow {vocab_size} {setup} {key}: {row[key]:.2f} s")
            if setup == "nonstatic":
                classifier = fresh_model(conf("model", "bow"), matrix, True)
                row["gradient_only_s"] = gradient_only_seconds(classifier, encoded, epochs)
                progress(
                    f"bow {vocab_size} nonstatic gradient only: {row['gradient_only_s']:.2f} s"
                )
            rows.append(row)
    for row in rows:
        static = next(
            r for r in rows if r["vocab_size"] == row["vocab_size"] and r["setup"] == "static"
        )
        row["sparse_vs_static"] = row["sparse_s"] / static["sparse_s"]
        row["dense_vs_static"] = row["dense_s"] / static["dense_s"]
        row["dense_vs_sparse"] = row["dense_s"] / row["sparse_s"]
        if "gradient_only_s" in row:
            row["gradient_only_vs_static"] = row["gradient_only_s"] / static["sparse_s"]
    return rows


# --- nonstatic / static side by side, and the update's ops ------------------------------


def interleaved_epochs(steps: dict[str, Callable], encoded: train.Encoded, rounds: int) -> dict:
    """Epoch seconds of each step function, round after round, one epoch each in turn."""
    warm_up = train.Encoded(encoded.ids[: 20 * BATCH_SIZE], encoded.labels[: 20 * BATCH_SIZE])
    for step in steps.values():  # tracing
        train.train_epoch(step, warm_up, BATCH_SIZE, 1, np.random.default_rng(SEED))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            train.train_epoch(step, encoded, BATCH_SIZE, 1, np.random.default_rng(SEED + round_))
            times[name].append(time.perf_counter() - started)
    return times


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict:
    ratios = np.array(numerator) / np.array(denominator)
    return {
        "median": float(np.median(ratios)),
        "min": float(ratios.min()),
        "max": float(ratios.max()),
        "rounds": len(ratios),
    }


def train_step_of(cfg_model, matrix: np.ndarray, trainable: bool, optimizer=None):
    """A bag-of-embeddings classifier and its training step (lazy Adam unless `optimizer`)."""
    classifier = model.build_model(cfg_model, [matrix], [trainable], 2)
    settings = optimizer or optimizer_config(True)
    return classifier, train.make_train_step(classifier, train.make_optimizer(settings))


def bench_bow_side_by_side(vocab_sizes: list[int], examples: int, rounds: int) -> list[dict]:
    """Static, nonstatic (lazy Adam, and lazy Adadelta as Kim trains), and the gradient-only
    floor, their epochs alternating; ratios to static per round."""
    rows = []
    for vocab_size in vocab_sizes:
        encoded, matrix = synthetic_tokens(vocab_size, examples), bow_matrices(vocab_size)["static"]
        keras.backend.clear_session()
        gc.collect()
        train.seed_everything(SEED)
        bow = conf("model", "bow")
        build = functools.partial(train_step_of, bow, matrix)
        adadelta = OmegaConf.merge(conf("train", "kim").optimizer, {"sparse": True})
        steps = {
            "static": build(False)[1],
            "nonstatic": build(True)[1],
            "nonstatic_adadelta": build(True, adadelta)[1],
            "gradient_only": gradient_only_step(build(True)[0]),
        }
        times = interleaved_epochs(steps, encoded, rounds)
        row = {"vocab_size": vocab_size, "epoch_s": times}
        for name in ("nonstatic", "nonstatic_adadelta", "gradient_only"):
            row[f"{name}_vs_static"] = ratio_summary(times[name], times["static"])
        row["update_breakdown_ms"] = update_breakdown(encoded, vocab_size)
        row["static_step_ms"] = 1e3 * min(times["static"]) / math.ceil(examples / BATCH_SIZE)
        progress(
            f"bow {vocab_size} side by side: nonstatic/static "
            f"{row['nonstatic_vs_static']['median']:.2f}, floor "
            f"{row['gradient_only_vs_static']['median']:.2f}"
        )
        rows.append(row)
    return rows


def embedding_gradients(encoded: train.Encoded, vocab_size: int, batches: int = 20) -> list:
    """IndexedSlices as the lookup of a batch produces them: one slice per token."""
    rng = np.random.default_rng(SEED)
    chosen = train.batch_indices(np.array([len(i) for i in encoded.ids]), BATCH_SIZE, rng)
    gradients = []
    for batch in chosen[:batches]:
        ids = np.concatenate([encoded.ids[i] for i in batch])
        values = rng.normal(size=(len(ids), EMBEDDING_DIM)).astype(np.float32)
        gradients.append(tf.IndexedSlices(tf.constant(values), tf.constant(ids)))
    return gradients


def per_call_seconds(function: Callable, inputs: list) -> float:
    started = time.perf_counter()
    for batch in inputs:
        function(batch)
    return (time.perf_counter() - started) / len(inputs)


def update_breakdown(encoded: train.Encoded, vocab_size: int, repeats: int = 5) -> dict:
    """Milliseconds a step of each piece of the row-sparse updates, alone on the same batches:
    what each op of lazy Adam costs, and Adadelta's fused kernel."""
    from embcompare.training import optimizers

    gradients = embedding_gradients(encoded, vocab_size)
    zeros = np.zeros((vocab_size, EMBEDDING_DIM), np.float32)
    table, slot_m, slot_v = (tf.Variable(zeros) for _ in range(3))
    deduplicated = [optimizers.touched_rows(g) for g in gradients]

    def dedup(g):
        return optimizers.touched_rows(g)[1]

    def gather(g):
        rows, _ = g
        return tf.gather(slot_m, rows), tf.gather(slot_v, rows)

    def math_only(g):
        _, grad = g
        m = grad + (grad - grad) * 0.1
        v = grad + (tf.square(grad) - grad) * 0.001
        return (m * 0.01) / (tf.sqrt(v) + 1e-7)

    def scatter(g):
        rows, grad = g
        slot_m.scatter_update(tf.IndexedSlices(grad, rows))
        slot_v.scatter_update(tf.IndexedSlices(grad, rows))

    def scatter_sub(g):
        rows, grad = g
        table.scatter_sub(tf.IndexedSlices(grad, rows))

    def optimizer_update(cls):
        variable = keras.Variable(zeros)
        optimizer = cls(learning_rate=0.001)
        optimizer.build([variable])
        return lambda g: optimizer.apply([g], [variable])

    pieces = {
        "adam_deduplicate": (dedup, gradients),
        "adam_gather_moments": (gather, deduplicated),
        "adam_elementwise": (math_only, deduplicated),
        "adam_scatter_moments": (scatter, deduplicated),
        "adam_scatter_sub_weights": (scatter_sub, deduplicated),
        "adam_whole_update": (optimizer_update(optimizers.SparseAdam), gradients),
        "adadelta_whole_update": (optimizer_update(optimizers.SparseAdadelta), gradients),
    }
    timed = {}
    for name, (piece, inputs) in pieces.items():
        function = tf.function(piece, reduce_retracing=True)  # batches differ in rows
        for batch in inputs[:2]:
            function(batch)
        timed[name] = 1e3 * min(per_call_seconds(function, inputs) for _ in range(repeats))
    timed["unique_rows_per_batch"] = float(np.mean([len(r) for r, _ in deduplicated]))
    timed["tokens_per_batch"] = float(np.mean([len(g.indices) for g in gradients]))
    return timed


# --- CNN padding on real data ---------------------------------------------------------------


def sst2_training_set(data_dir: Path, mirror: str | None, cache_dir: Path, limit: int | None):
    """SST-2's training sentences, encoded, and their GloVe 6B 50d matrix (as run.py makes it)."""
    cfg_dataset = conf("dataset", "sst2")
    splits = data.load_tokenized(cfg_dataset, data_dir, mirror, cache_dir)
    split = splits.train if limit is None else splits.train.take(np.arange(limit))
    tokens = split.tokens
    vocab = text.Vocabulary.build(tokens)
    source = embeddings.load_pretrained(conf("embedding", "glove-6b-50d"), cache_dir)
    matrix = embeddings.build_matrix(vocab, source, "pretrained", SEED)
    return train.Encoded(vocab.encode(tokens), split.labels), matrix


def bench_padding(
    encoded: train.Encoded, matrix: np.ndarray, epochs: int, buckets: list[int]
) -> dict:
    """Nonstatic CNN epochs (sparse Adam) under each padding, and a static reference."""
    cfg_model = conf("model", "cnn")
    window = max(cfg_model.windows)
    longest = max(len(ids) for ids in encoded.ids)
    variants = {
        "fixed_max_length": (True, max(window, longest), 0),
        "batch_length": (True, window, 0),
        **{f"batch_length_bucketed_{k}": (True, window, k) for k in buckets},
        "static_batch_length": (False, window, 0),
    }
    lengths = np.array([len(ids) for ids in encoded.ids])
    figures: dict = {
        "examples": len(encoded),
        "longest": longest,
        "mean_length": lengths.mean(),
        "variants": list(variants),
        "mean_padded_length": {},
    }
    for name, (trainable, min_length, bucket_batches) in variants.items():
        chosen = train.batch_indices(
            lengths, BATCH_SIZE, np.random.default_rng(SEED), bucket_batches
        )
        widths = [max(min_length, lengths[batch].max()) for batch in chosen]
        figures["mean_padded_length"][name] = float(np.mean(widths))
        classifier = fresh_model(cfg_model, matrix, trainable)
        figures[name] = epoch_seconds(classifier, True, encoded, epochs, min_length, bucket_batches)
        progress(f"cnn {name}: {figures[name]:.2f} s")
    figures["fixed_vs_batch_length"] = figures["fixed_max_length"] / figures["batch_length"]
    figures["fixed_vs_bucketed"] = {
        k: figures["fixed_max_length"] / figures[f"batch_length_bucketed_{k}"] for k in buckets
    }
    figures["nonstatic_vs_static"] = figures["batch_length"] / figures["static_batch_length"]
    return figures


def bench_convolutions(cfg_model, width: int, dim: int) -> dict:
    """Kim's convolutions alone at a training batch's shape (50 sentences, `width` tokens wide):
    milliseconds forward, and forward + both gradients (weights, and the input that a trained
    embedding needs), with the arithmetic rate each reaches; beside them a plain matmul of the
    same size, about the best this core does. Near that rate a step only gets cheaper by
    computing fewer positions."""
    rng = np.random.default_rng(SEED)
    inputs = tf.constant(rng.normal(size=(BATCH_SIZE, width, dim)).astype(np.float32))
    rows = {}
    for window in cfg_model.windows:
        kernel = tf.constant(rng.normal(size=(window, dim, cfg_model.filters)).astype(np.float32))
        positions = BATCH_SIZE * (width - window + 1)
        patches = tf.constant(rng.normal(size=(positions, window * dim)).astype(np.float32))
        timed = {
            name: best_call_ms(function)
            for name, function in convolution_functions(inputs, kernel, patches).items()
        }
        mflop = 2e-6 * positions * window * dim * cfg_model.filters
        rows[int(window)] = {
            "mflop_forward": mflop,
            "forward_ms": timed["forward"],
            "forward_and_gradients_ms": timed["forward_and_gradients"],
            "matmul_ms": timed["matmul"],
            "gflops_forward": mflop / timed["forward"],
            # each gradient is a convolution of the forward's size
            "gflops_forward_and_gradients": 3 * mflop / timed["forward_and_gradients"],
            "gflops_matmul": mflop / timed["matmul"],
        }
    progress(f"cnn convolutions at width {width}: {rows}")
    return {"width": width, "dim": dim, "filters": int(cfg_model.filters), "windows": rows}


def convolution_functions(inputs: tf.Tensor, kernel: tf.Tensor, patches: tf.Tensor) -> dict:
    flat_kernel = tf.reshape(kernel, (patches.shape[1], -1))

    @tf.function
    def forward():
        return tf.nn.conv1d(inputs, kernel, 1, "VALID")

    @tf.function
    def forward_and_gradients():
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            out = tf.nn.conv1d(inputs, kernel, 1, "VALID")
            loss = tf.reduce_sum(out * out)
        return tape.gradient(loss, [inputs, kernel])

    @tf.function
    def matmul():
        return patches @ flat_kernel

    return {"forward": forward, "forward_and_gradients": forward_and_gradients, "matmul": matmul}


def best_call_ms(function: Callable[[], object], calls: int = 200, repeats: int = 3) -> float:
    function()  # tracing
    return 1e3 * min(per_call_seconds(lambda _: function(), range(calls)) for _ in range(repeats))


# --- vector loading -------------------------------------------------------------------------


def bench_tokenized(data_dir: Path, mirror: str | None) -> dict:
    """SST-2 phrases (67k texts): read and tokenize, then the disk cache, then the memo."""
    cfg_dataset = conf("dataset", "sst2_phrases")
    with tempfile.TemporaryDirectory(prefix="embcompare-bench-") as scratch:

        def from_disk():
            data._tokenized_files.cache_clear()
            return data.load_tokenized(cfg_dataset, data_dir, mirror, Path(scratch))

        figures = {
            "first_read_and_tokenize_s": seconds(from_disk),
            "disk_cache_s": seconds(from_disk),
            "in_process_memo_s": seconds(
                lambda: data.load_tokenized(cfg_dataset, data_dir, mirror, Path(scratch))
            ),
        }
        splits = data.load_tokenized(cfg_dataset, data_dir, mirror, Path(scratch))
        figures["texts"] = len(splits.train) + len(splits.dev) + len(splits.test)
    progress(f"tokenized: {figures}")
    return figures


def write_glove_text(source: embeddings.PretrainedVectors, path: Path, words: int) -> None:
    """The first `words` vectors as a GloVe text file: `word v1 ... vd` per line, no header."""
    vectors = np.asarray(source.vectors[:words])
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, words, 10_000):
            block = vectors[start : start + 10_000]
            lines = (
                f"{word} {' '.join(f'{x:.6f}' for x in row)}\n"
                for word, row in zip(source.words[start : start + 10_000], block, strict=True)
            )
            handle.writelines(lines)


def bench_vectors(cache_dir: Path, words: int) -> dict:
    glove = conf("embedding", "glove-6b-50d")

    def from_disk(cfg, directory):
        """A load as a new process sees it: the in-process memo is emptied first."""
        embeddings.forget_loaded()
        return embeddings.load_pretrained(cfg, directory)

    figures = {
        "package_first_s": seconds(lambda: from_disk(glove, cache_dir)),
        "package_second_s": seconds(lambda: from_disk(glove, cache_dir)),
        "in_process_memo_s": seconds(lambda: embeddings.load_pretrained(glove, cache_dir)),
    }
    source = embeddings.load_pretrained(glove, cache_dir)
    words = min(words, len(source.words))
    with tempfile.TemporaryDirectory(prefix="embcompare-bench-") as scratch:
        path = Path(scratch) / "glove.6B.50d.txt"
        figures["text_write_s"] = seconds(lambda: write_glove_text(source, path, words))
        cfg = {"name": "bench-glove-text", "format": "glove_text", "path": str(path), "dim": 50}
        scratch_cache = Path(scratch) / "cache"
        load = lambda: from_disk(cfg, scratch_cache)  # noqa: E731
        figures["text_first_parse_and_cache_s"] = seconds(load)
        figures["text_cached_s"] = seconds(load)
        figures["words"], figures["text_mb"] = words, path.stat().st_size / 1e6
    progress(f"vectors: {figures}")
    return figures


# --- sweeps at 1 and N workers, per-run overhead ---------------------------------------

SWEEPS = {
    # name: (overrides, quick) -- the smoke experiment with 4 seeds (16 bag-of-embeddings runs),
    # and 8 learning-curve runs (Kim CNN, SST-2, n=100 and 1000, 2 seeds, all four setups)
    "smoke": (["experiment=smoke", "seed=1,2,3,4"], True),
    "learning_curve": (["experiment=learning_curve", "train.n=100,1000", "seed=1,2"], False),
}


def sweep_seconds(overrides: list[str], n_jobs: int, data_dir: Path, mirror: str | None) -> dict:
    """Wall time of one sweep through the command line, into a scratch results dir, as
    `make sweep N_JOBS=n_jobs` runs it (the first start of TF included, report excluded)."""
    launcher = [] if n_jobs == 1 else ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    with tempfile.TemporaryDirectory(prefix="embcompare-bench-") as scratch:
        paths = [f"paths.data_dir={data_dir}", f"paths.results_dir={scratch}"]
        paths += [f"paths.mirror={mirror}"] if mirror else []
        command = [sys.executable, "-m", "embcompare.cli", "run", "-m", *overrides, *launcher]
        started = time.perf_counter()
        done = subprocess.run([*command, *paths], capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        runs = len(list(Path(scratch).glob("*/runs/*/metrics.json")))
    return {"wall_s": wall, "runs": runs, "runs_per_hour": 3600 * runs / wall}


def bench_sweeps(data_dir: Path, mirror: str | None, quick: bool) -> dict:
    """Each sweep at 1 worker and at one worker per core, alternately: speed-up = wall(1) /
    wall(N)."""
    cores = len(os.sched_getaffinity(0))
    figures: dict = {"workers": [1, cores]}
    for name, (overrides, in_quick) in SWEEPS.items():
        if quick and not in_quick:
            continue
        by_workers = {n: sweep_seconds(overrides, n, data_dir, mirror) for n in (1, cores)}
        figures[name] = {
            **{f"workers_{n}": f for n, f in by_workers.items()},
            "speed_up": by_workers[1]["wall_s"] / by_workers[cores]["wall_s"],
        }
        progress(f"sweep {name}: {figures[name]}")
    return figures


TINY_RUN = [
    "dataset=sst2",
    "model=bow",
    "setup=nonstatic",
    "train.n=100",
    "train.epochs=1",
    "train.min_steps=0",
    "train.progress=false",
]


def bench_overhead(data_dir: Path, mirror: str | None) -> dict:
    """What a run spends outside training steps: the imports of a fresh process, and each stage
    of a tiny run (2 training steps) done twice in this process; the second run's total is the
    fixed cost of a run in a reused worker (model build and tracing are in its train stage)."""
    from embcompare import run

    imports = (
        "import time; t = time.perf_counter(); import embcompare.run, tensorflow, keras; "
        "from embcompare.training import loop; from embcompare.analysis import semantic; "
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", imports], capture_output=True, text=True)
    figures: dict = {"import_s": float(done.stdout.split()[-1])}
    paths = [f"paths.data_dir={data_dir}"] + ([f"paths.mirror={mirror}"] if mirror else [])
    cfg = compose("config", [*TINY_RUN, *paths])
    for attempt in ("first", "second"):
        with tempfile.TemporaryDirectory(prefix="embcompare-bench-") as scratch:
            written = seconds(lambda: run.execute(cfg, Path(scratch)))
            metrics = json.loads((Path(scratch) / "metrics.json").read_text())
        stages = {k: v for k, v in metrics.items() if k.startswith("seconds_")}
        # the rest of execute: gathering metrics and writing metrics.json
        stages["seconds_metrics_and_writing"] = written - sum(stages.values())
        figures[attempt] = {**stages, "total_s": written, "steps": metrics["steps"]}
    progress(f"overhead: {figures}")
    return figures


# --- the report -----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def settings() -> dict:
    """What the figures depend on besides the code; the thread counts are a run's `threads`
    (0 would mean TF's default: one intra-op thread per available core)."""
    return {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def report(figures: dict) -> str:
    s = figures["settings"]
    lines = [
        f"embcompare bench{' --quick' if figures['quick'] else ''}: TF {s['tensorflow']}, "
        f"Keras {s['keras']}, {s['cores_available']} cores, intra-op threads "
        f"{s['tf_intra_op_threads']}, inter-op {s['tf_inter_op_threads']} (a run's `threads`), "
        f"GPUs {s['gpus']}",
        "",
        f"Bag of embeddings, epoch of {figures['bow_examples']:,} synthetic sentences "
        f"(batch {BATCH_SIZE}, ~{SENTENCE_LENGTH} tokens), seconds and ratio to static:",
        f"{'matrix':>12} {'setup':>10} {'sparse s':>9} {'/static':>8} {'dense s':>9} "
        f"{'/static':>8} {'dense/sparse':>13}",
    ]
    for row in figures["bow"]:
        matrix = f"{row['vocab_size']:,}x{EMBEDDING_DIM}"
        sparse = f"{row['sparse_s']:>9.2f} {row['sparse_vs_static']:>8.2f}"
        dense = f"{row['dense_s']:>9.2f} {row['dense_vs_static']:>8.2f}"
        lines.append(
            f"{matrix:>12} {row['setup']:>10} {sparse} {dense} {row['dense_vs_sparse']:>13.2f}"
        )
    for row in (r for r in figures["bow"] if "gradient_only_s" in r):
        lines.append(
            f"{row['vocab_size']:>11,}x{EMBEDDING_DIM} nonstatic, embedding gradient computed but "
            f"not applied (the floor under any update): {row['gradient_only_s']:.2f} s, "
            f"{row['gradient_only_vs_static']:.2f}x static"
        )
    lines += ["", *side_by_side_lines(figures)]
    cnn = figures["cnn_sst2"]
    lines += [
        "",
        f"Kim CNN on SST-2 train ({cnn['examples']:,} sentences, mean {cnn['mean_length']:.1f}, "
        f"longest {cnn['longest']} tokens; GloVe 50d, sparse Adam), epoch seconds:",
    ]
    for name in cnn["variants"]:
        padded = cnn["mean_padded_length"][name]
        lines.append(f"  {name:<32} {cnn[name]:7.2f}   (batches {padded:.1f} tokens wide)")
    bucketed = ", ".join(f"{k} batches {r:.2f}x" for k, r in cnn["fixed_vs_bucketed"].items())
    lines += [
        f"  fixed / batch length {cnn['fixed_vs_batch_length']:.2f}x; fixed / bucketed in chunks "
        f"of {bucketed}; nonstatic / static {cnn['nonstatic_vs_static']:.2f}x",
        *convolution_lines(figures["cnn_convolutions"]),
        "",
    ]
    v, t = figures["vectors"], figures["tokenized"]
    lines += [
        f"GloVe 6B 50d load, seconds: package first {v['package_first_s']:.2f}, second "
        f"{v['package_second_s']:.2f}; text file ({v['words']:,} words, {v['text_mb']:.0f} MB, "
        f"written in {v['text_write_s']:.1f}) first load (gensim parse + cache) "
        f"{v['text_first_parse_and_cache_s']:.2f}, cached {v['text_cached_s']:.2f}; again in "
        f"the same process (memo) {v['in_process_memo_s']:.4f}",
        f"SST-2 phrases ({t['texts']:,} texts) read and tokenized, seconds: first "
        f"{t['first_read_and_tokenize_s']:.2f}, from the disk cache {t['disk_cache_s']:.2f}, "
        f"again in the same process (memo) {t['in_process_memo_s']:.4f}",
        f"Peak RSS {figures['peak_rss_mb']:,.0f} MB (after vectors "
        f"{figures['peak_rss_mb_after']['vectors']:,.0f}, after bag of embeddings "
        f"{figures['peak_rss_mb_after']['bow']:,.0f}); whole bench {figures['total_s']:.0f} s",
    ]
    if "sweeps" in figures:
        lines += ["", *sweep_lines(figures["sweeps"])]
    lines += ["", *overhead_lines(figures["overhead"])]
    return "\n".join(lines)


RATIO_GOAL = 1.6  # issue 18: nonstatic / static on the bag of embeddings
OVERHEAD_GOAL_S = 1.0  # issue 18: a run's fixed cost in a reused worker


def ratio_text(summary: dict) -> str:
    return f"{summary['median']:.2f} [{summary['min']:.2f}, {summary['max']:.2f}]"


def side_by_side_lines(figures: dict) -> list[str]:
    rows = figures["bow_side_by_side"]
    lines = [
        f"Bag of embeddings side by side (epochs alternate; median ratio to static [min, max] "
        f"over {rows[0]['nonstatic_vs_static']['rounds']} rounds), goal nonstatic <= "
        f"{RATIO_GOAL}:"
    ]
    for row in rows:
        verdict = met_or_missed(row["nonstatic_vs_static"]["median"], RATIO_GOAL)
        b = row["update_breakdown_ms"]
        lines += [
            f"{row['vocab_size']:>11,}x{EMBEDDING_DIM}: nonstatic (lazy Adam) "
            f"{ratio_text(row['nonstatic_vs_static'])} ({verdict}); lazy Adadelta "
            f"{ratio_text(row['nonstatic_adadelta_vs_static'])}; gradient-only floor "
            f"{ratio_text(row['gradient_only_vs_static'])}",
            f"{'':>13}ms a step: static step {row['static_step_ms']:.2f}; lazy Adam update "
            f"{b['adam_whole_update']:.2f} = de-duplicate {b['adam_deduplicate']:.2f} "
            f"({b['unique_rows_per_batch']:.0f} rows of {b['tokens_per_batch']:.0f} tokens) + "
            f"gather moments {b['adam_gather_moments']:.2f} + element-wise "
            f"{b['adam_elementwise']:.2f} + scatter moments {b['adam_scatter_moments']:.2f} + "
            f"scatter_sub weights {b['adam_scatter_sub_weights']:.2f}; Adadelta (de-duplicate "
            f"+ fused kernel) {b['adadelta_whole_update']:.2f}",
        ]
    return lines


def convolution_lines(convolutions: dict) -> list[str]:
    lines = [
        f"  its convolutions alone, batch {BATCH_SIZE} x {convolutions['width']} tokens x "
        f"{convolutions['dim']}, {convolutions['filters']} filters: ms (GFLOP/s)"
    ]
    for window, row in convolutions["windows"].items():
        lines.append(
            f"    window {window}: forward {row['forward_ms']:.2f} ({row['gflops_forward']:.0f}), "
            f"with both gradients {row['forward_and_gradients_ms']:.2f} "
            f"({row['gflops_forward_and_gradients']:.0f}); a plain matmul of the same size "
            f"{row['matmul_ms']:.2f} ({row['gflops_matmul']:.0f})"
        )
    return lines


def sweep_lines(sweeps: dict) -> list[str]:
    low, high = sweeps["workers"]
    lines = [f"Sweeps through the command line at {low} and {high} worker processes:"]
    for name in (n for n in SWEEPS if n in sweeps):
        one, many = sweeps[name][f"workers_{low}"], sweeps[name][f"workers_{high}"]
        lines.append(
            f"  {name} ({one['runs']} runs): {one['wall_s']:.0f} s, {one['runs_per_hour']:.0f} "
            f"runs/h at {low}; {many['wall_s']:.0f} s, {many['runs_per_hour']:.0f} runs/h at "
            f"{high}; speed-up {sweeps[name]['speed_up']:.2f}x"
        )
    return lines


def overhead_lines(overhead: dict) -> list[str]:
    def stages(figures: dict) -> str:
        named = [
            f"{k.removeprefix('seconds_')} {v:.2f}"
            for k, v in figures.items()
            if k.startswith("seconds_")
        ]
        return f"{', '.join(named)}; total {figures['total_s']:.2f}"

    return [
        f"Per-run overhead, seconds: imports of a fresh process {overhead['import_s']:.2f}; a tiny "
        f"run ({overhead['first']['steps']} training steps; train = model build + tracing):",
        f"  first in its process: {stages(overhead['first'])}",
        f"  second, as in a reused worker: {stages(overhead['second'])} (goal <= "
        f"{OVERHEAD_GOAL_S:.0f} s {met_or_missed(overhead['second']['total_s'], OVERHEAD_GOAL_S)})",
    ]


def met_or_missed(figure: float, goal: float) -> str:
    return "met" if figure <= goal else "missed"


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, one timed epoch")
    parser.add_argument("--data-dir", help="default: $EMBCOMPARE_DATA or ./data")
    parser.add_argument("--mirror", default=os.environ.get("DATA_MIRROR") or None)
    parser.add_argument("--out", type=Path, default=Path("results/bench/bench.json"))
    parser.add_argument(
        "--rounds", type=int, help="rounds of the side-by-side ratios (default 7, quick 3)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="TensorFlow and BLAS threads, as a run's `threads` (default: the config's)",
    )
    parser.add_argument(
        "--no-sweeps", action="store_true", help="leave out the sweeps at 1 and N workers"
    )
    parser.add_argument(
        "--bucket-batches",
        type=int,
        nargs="+",
        default=[8, 32],
        help="chunk sizes (in batches) of the length-bucketed CNN variants",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    # before TensorFlow's first op, so every figure is taken with the threads a run uses
    use_threads(args.threads if args.threads is not None else int(compose("config").threads))
    data_dir = data_dir_from(args.data_dir)
    examples, epochs = (2_000, 1) if args.quick else (10_000, 2)
    figures: dict = {"quick": args.quick, "settings": settings(), "bow_examples": examples}
    # vectors first, so that the package load is this process's first
    figures["vectors"] = bench_vectors(data_dir / "cache", 50_000 if args.quick else 400_000)
    peaks = {"vectors": peak_rss_mb()}  # the peak so far, after each part
    figures["bow"] = bench_bow([20_000, 100_000], examples, epochs)
    rounds = args.rounds or (3 if args.quick else 7)
    figures["bow_side_by_side"] = bench_bow_side_by_side([20_000, 100_000], examples, rounds)
    peaks["bow"] = peak_rss_mb()
    encoded, matrix = sst2_training_set(
        data_dir, args.mirror, data_dir / "cache", 2_000 if args.quick else None
    )
    figures["cnn_sst2"] = bench_padding(encoded, matrix, epochs, args.bucket_batches)
    width = round(figures["cnn_sst2"]["mean_padded_length"]["batch_length"])
    figures["cnn_convolutions"] = bench_convolutions(conf("model", "cnn"), width, matrix.shape[1])
    figures["tokenized"] = bench_tokenized(data_dir, args.mirror)
    figures["overhead"] = bench_overhead(data_dir, args.mirror)
    if not args.no_sweeps:
        figures["sweeps"] = bench_sweeps(data_dir, args.mirror, args.quick)
    figures["peak_rss_mb"], figures["peak_rss_mb_after"] = peak_rss_mb(), peaks
    figures["total_s"] = time.perf_counter() - started
    print(report(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
