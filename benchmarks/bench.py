"""Speed figures from one run, side by side: `make bench` (python benchmarks/bench.py [--quick]).

* Bag-of-embeddings epoch time for static, nonstatic and rand, with the row-sparse optimizer
  (train.optimizer.sparse=true) and with Keras's dense Adam, at 20k x 300 and 100k x 300, on
  synthetic token data shaped like real data (Zipf-distributed words, ~50 tokens a sentence,
  10,000 sentences, batches of 50), as ratios to static.
* Kim CNN epoch time on real SST-2 with every batch padded to the dataset's longest sentence,
  to its own longest sentence (what training does), and with length-bucketed batches.
* Load time of GloVe 6B 50d: from its package, and as a GloVe text file through gensim (first
  load parses and caches, the second reads the cache).
* Peak resident memory of the process.

Epoch times are the best of a few epochs after a warm-up (tracing excluded), training steps
only: no dev evaluation. The table goes to stdout, the figures to results/bench/bench.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
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
    """Best epoch time of a step that computes the embedding gradient but does not apply it.

    This is what a trained embedding costs before any optimizer touches it: the floor under
    every row-sparse update. The gradient's values are summed into the returned loss (times
    zero) so that TensorFlow cannot prune their computation.
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

    rng = np.random.default_rng(SEED)
    warm_up = train.Encoded(encoded.ids[: 20 * BATCH_SIZE], encoded.labels[: 20 * BATCH_SIZE])
    train.train_epoch(step, warm_up, BATCH_SIZE, 1, rng)
    return min(
        seconds(lambda: train.train_epoch(step, encoded, BATCH_SIZE, 1, rng)) for _ in range(epochs)
    )


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


# --- the report -----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def settings() -> dict:
    """What the figures depend on besides the code. Thread counts 0 mean TF's default:
    one intra-op thread per available core, and an inter-op pool of the same size."""
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
        f"{s['tf_intra_op_threads']}, inter-op {s['tf_inter_op_threads']} (0 = TF default: "
        f"one per core), GPUs {s['gpus']}",
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
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, one timed epoch")
    parser.add_argument("--data-dir", help="default: $EMBCOMPARE_DATA or ./data")
    parser.add_argument("--mirror", default=os.environ.get("DATA_MIRROR") or None)
    parser.add_argument("--out", type=Path, default=Path("results/bench/bench.json"))
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
    data_dir = data_dir_from(args.data_dir)
    examples, epochs = (2_000, 1) if args.quick else (10_000, 2)
    figures: dict = {"quick": args.quick, "settings": settings(), "bow_examples": examples}
    # vectors first, so that the package load is this process's first
    figures["vectors"] = bench_vectors(data_dir / "cache", 50_000 if args.quick else 400_000)
    peaks = {"vectors": peak_rss_mb()}  # the peak so far, after each part
    figures["bow"] = bench_bow([20_000, 100_000], examples, epochs)
    peaks["bow"] = peak_rss_mb()
    encoded, matrix = sst2_training_set(
        data_dir, args.mirror, data_dir / "cache", 2_000 if args.quick else None
    )
    figures["cnn_sst2"] = bench_padding(encoded, matrix, epochs, args.bucket_batches)
    figures["tokenized"] = bench_tokenized(data_dir, args.mirror)
    figures["peak_rss_mb"], figures["peak_rss_mb_after"] = peak_rss_mb(), peaks
    figures["total_s"] = time.perf_counter() - started
    print(report(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
