"""One run: data -> vectors -> embedding matrix -> model -> training -> metrics on disk.

embcompare run dataset=mr setup=static train.n=500 seed=1
python -m embcompare.run dataset=mr setup=static train.n=500 seed=1
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import time
import traceback
from pathlib import Path

import hydra
import numpy as np
from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from embcompare import validation
from embcompare.config import CONF_DIR, config_record, register_resolvers
from embcompare.errors import EmbcompareError
from embcompare.io import write_json_atomic
from embcompare.training import progress as sweep_progress

log = logging.getLogger("embcompare")

# Launcher workers import only this module before they resolve ${run_key:} in the sweep dir.
register_resolvers()


class Stopwatch:
    """Wall time per pipeline stage, reported as seconds_<stage> in metrics.json."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[f"seconds_{stage}"] = now - self._last
        self._last = now


def execute(cfg: DictConfig, output_dir: Path) -> dict:
    """Run every stage for one config; write history, embedding rows and, last, metrics.json.
    The config's logger (conf/logger/) shows the run as it goes; it cannot make the run fail."""
    from embcompare.reporting.loggers import open_logger

    use_threads(int(cfg.threads))
    run_logger = open_logger(cfg.logger, output_dir)
    run_logger.start(cfg)
    try:
        metrics = _run_stages(cfg, output_dir, run_logger)
    except BaseException:
        run_logger.finish(None)
        raise
    run_logger.finish(metrics)
    return metrics


def _run_stages(cfg: DictConfig, output_dir: Path, observer) -> dict:
    from embcompare.analysis import task_scores as evaluate
    from embcompare.data import datasets as data
    from embcompare.data import text, user_file
    from embcompare.data.fetch import data_dir_from
    from embcompare.models import classifier as model
    from embcompare.training import loop as train
    from embcompare.vectors import pretrained as embeddings

    clock = Stopwatch()
    cache_dir = Path(cfg.paths.cache_dir).absolute()
    if user_file.is_user_file(cfg.dataset):
        user_file.prepare(cfg.dataset, cache_dir)  # fills dataset.labels from the file
    if cfg.semantic.enabled:
        from embcompare.analysis.word_benchmarks import check_extra_benchmarks

        check_extra_benchmarks(cfg)
    splits = data.load_tokenized(
        cfg.dataset, data_dir_from(cfg.paths.data_dir), cfg.paths.mirror, cache_dir
    )
    train_split = data.subsample(splits.train, cfg.train.n, int(cfg.seed), list(cfg.dataset.labels))
    train_tokens, dev_tokens, test_tokens = (
        s.tokens for s in (train_split, splits.dev, splits.test)
    )
    clock.lap("data")
    source = embeddings.load_pretrained(cfg.embedding, cache_dir)
    unseen_policy = embeddings.unseen_policy(cfg.embedding.get("unseen", "random"), source)
    extra = _extra_words(cfg, source, dev_tokens + test_tokens, unseen_policy)
    vocab = text.Vocabulary.build(train_tokens, min_count=int(cfg.vocab.min_count), extra=extra)
    matrices = [
        embeddings.build_matrix(
            vocab,
            source,
            channel.init,
            int(cfg.seed),
            channel.get("init_scale", "variance_matched"),
            where=f"setup.channels.{i}",
            unseen=unseen_policy,
        )
        for i, channel in enumerate(cfg.setup.channels)
    ]
    clock.lap("vectors")

    train.seed_everything(int(cfg.seed))
    trainable = [bool(channel.trainable) for channel in cfg.setup.channels]
    classifier = model.build_model(cfg.model, matrices, trainable, len(cfg.dataset.labels))
    min_length = max(cfg.model.get("windows", [1]))
    encoded = {
        name: train.Encoded(vocab.encode(tokens), split.labels)
        for name, tokens, split in (
            ("train", train_tokens, train_split),
            ("dev", dev_tokens, splits.dev),
            ("test", test_tokens, splits.test),
        )
    }
    history = train.fit(
        classifier, encoded["train"], encoded["dev"], cfg.train, int(cfg.seed), min_length, observer
    )
    clock.lap("train")

    unseen = evaluate.has_unseen_known_word(test_tokens, train_tokens, source)
    oov = evaluate.has_oov_word(test_tokens, source)
    scores = evaluate.task_scores(classifier, encoded["test"], min_length, unseen, oov)
    final = [np.asarray(layer.embeddings) for layer in model.embedding_layers(classifier)]
    _save_outputs(output_dir, vocab, final, history, classifier, encoded["test"], cfg)
    clock.lap("evaluate")
    semantic_scores = {}
    if cfg.semantic.enabled:
        from embcompare.analysis import semantic

        semantic_scores = semantic.evaluate_run(
            cfg, vocab, source, matrices, final, train_tokens, train_split.labels, output_dir
        )
        semantic_scores.update(
            _perturbed_test_scores(
                cfg,
                classifier,
                vocab,
                source,
                train_tokens,
                encoded["test"],
                test_tokens,
                output_dir,
            )
        )
        clock.lap("semantic")
    best = max(history, key=lambda row: row["dev_accuracy"])
    metrics = {
        "dataset": cfg.dataset.name,
        "embedding": cfg.embedding.name,
        "setup": cfg.setup.name,
        **_init_scale_of(cfg, source),
        "model": cfg.model.name,
        "seed": int(cfg.seed),
        "n": cfg.train.n,
        "n_train": len(train_split),
        "n_dev": len(splits.dev),
        "n_test": len(splits.test),
        **scores,
        "dev_accuracy": best["dev_accuracy"],
        "best_epoch": best["epoch"],
        "epochs": history[-1]["epoch"],
        "steps": history[-1]["steps"],
        "train_seconds": clock.seconds["seconds_train"],
        "total_seconds": sum(clock.seconds.values()),
        **clock.seconds,
        "truncated_texts": sum(s.truncated_count() for s in (train_split, splits.dev, splits.test)),
        "vocab_size": len(vocab),
        "embedding_dim": source.dim,
        **embeddings.coverage(train_tokens, source).as_dict(),
        **semantic_scores,
        **config_record(cfg),
    }
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics


def _init_scale_of(cfg: DictConfig, source) -> dict:
    """The random init of the last channel (the `vectors` of embedding.npz): its setting and
    the half-width a of U(-a, a) it gave (for pretrained channels, of rows the source lacks)."""
    from embcompare.vectors.pretrained import init_half_width

    setting = cfg.setup.channels[-1].get("init_scale", "variance_matched")
    return {"init_scale": str(setting), "init_half_width": init_half_width(setting, source)}


def _perturbed_test_scores(
    cfg, classifier, vocab, source, train_tokens, test, test_tokens, output_dir: Path
):
    """Alps/Himalaya at sentence level: seen polar words of the test set swapped for their
    nearest unseen pretrained neighbours (measures.perturb_test_set); the swaps are listed in
    replacements.csv."""
    from embcompare.analysis import measures
    from embcompare.analysis import task_scores as evaluate
    from embcompare.analysis.lexicon import load_lexicon
    from embcompare.training import loop as train

    settings = cfg.semantic.lexicon
    polar = load_lexicon(settings.get("path")).polar(float(settings.min_abs_rating))
    counts = measures.training_counts(train_tokens)
    perturbation = measures.perturb_test_set(test_tokens, counts, vocab.words, polar, source)
    measures.write_replacements(output_dir / "replacements.csv", perturbation, counts, polar)
    perturbed = train.Encoded(vocab.encode(perturbation.tokens), test.labels)
    min_length = max(cfg.model.get("windows", [1]))
    return {
        **evaluate.perturbed_scores(classifier, test, perturbed, perturbation.replaced, min_length),
        "perturbed_replacement_words": len(perturbation.table),
    }


SENTENCES_SAVED = 400  # test sentences whose representations the report's PCA shows


def _save_outputs(output_dir, vocab, final, history, classifier, test, cfg) -> None:
    from embcompare.analysis import task_scores as evaluate
    from embcompare.models import classifier as model
    from embcompare.training import loop as train

    # Uncompressed: float rows shrink only ~20% under zlib, which took ~0.3 s of every run.
    np.savez(
        output_dir / "embedding.npz",
        words=np.array(vocab.words),
        vectors=final[-1],
        **{f"channel_{i}": m for i, m in enumerate(final)},
    )
    evaluate.write_history(output_dir / "history.csv", history)
    chosen = evaluate.stratified_sample(test.labels, SENTENCES_SAVED, int(cfg.seed))
    token_ids = train.pad([test.ids[i] for i in chosen], max(cfg.model.get("windows", [1])))
    np.savez_compressed(
        output_dir / "sentences.npz",
        features=model.sentence_features(classifier, token_ids),
        labels=test.labels[chosen],
        label_names=np.array(list(cfg.dataset.labels)),
    )


def _extra_words(cfg: DictConfig, source, eval_tokens, unseen_policy: str = "random") -> list[str]:
    """Dev/test words (and, on request, benchmark and polar lexicon words) that the pretrained
    source knows get rows too, so pretrained setups can use what they know about words never
    seen in training (rand gets random rows for them; unseen in training, they get no
    gradient). With embedding.unseen=subwords the source knows every word with character
    n-grams. They come after the training words, so they leave those rows' init unchanged."""
    from embcompare.vectors.pretrained import has_vector

    words = set()
    if cfg.vocab.add_eval_words:
        words.update(t for tokens in eval_tokens for t in tokens)
    if cfg.vocab.get("add_benchmark_words", False):
        from embcompare.analysis import word_benchmarks as benchmarks

        words.update(benchmarks.benchmark_words(cfg))
    if cfg.vocab.get("add_lexicon_words", False):
        from embcompare.analysis.lexicon import load_lexicon

        lexicon = cfg.semantic.lexicon
        words.update(load_lexicon(lexicon.get("path")).polar(float(lexicon.min_abs_rating)))
    return sorted(w for w in words if has_vector(source, w, unseen_policy))


def _io_problem(error: OSError, output_dir: Path, cfg: DictConfig | None = None) -> str:
    """One line for a failed read or write: the file when the OS names it, else the run."""
    where = error.filename or output_dir
    hint = ""
    if error.errno == errno.ENOSPC:
        hint = "; free some space and run again (finished runs are kept and skipped)"
    elif cfg is not None and Path(str(where)).absolute().is_relative_to(
        Path(str(cfg.paths.cache_dir)).absolute()
    ):  # e.g. a read-only data dir, whose cache/ holds converted vectors and tokenized data
        hint = "; set paths.cache_dir= to a writable directory"
    return f"{where}: {error.strerror or error}{hint}"


def describe_failure(error: Exception, output_dir: Path, cfg: DictConfig | None = None) -> str:
    """The one line a user sees: our own errors speak for themselves; anything else is a bug
    or an unforeseen input, named by type, with the traceback kept in the run directory."""
    if isinstance(error, EmbcompareError):
        return str(error)
    if isinstance(error, OSError):
        return _io_problem(error, output_dir, cfg)
    first_line = (str(error).strip().splitlines() or [""])[0]
    return (
        f"{output_dir}: unexpected {type(error).__name__}: {first_line} "
        f"(traceback in {output_dir / TRACEBACK_FILE})"
    )


ERROR_FILE = "error.json"
TRACEBACK_FILE = "traceback.txt"


def record_failure(output_dir: Path, error: Exception, message: str) -> None:
    """error.json (type, message, traceback file) for the report's list of failed runs, unless
    even that cannot be written."""
    try:
        (output_dir / TRACEBACK_FILE).write_text(
            "".join(traceback.format_exception(error)), encoding="utf-8"
        )
        write_json_atomic(
            output_dir / ERROR_FILE,
            {"type": type(error).__name__, "message": message, "traceback": TRACEBACK_FILE},
        )
    except OSError:
        log.warning("could not write %s", output_dir / ERROR_FILE)


def _forget_failure(output_dir: Path) -> None:
    """A run that now finished is no longer failed: drop what an earlier attempt left."""
    for name in (ERROR_FILE, TRACEBACK_FILE, "error.txt"):
        (output_dir / name).unlink(missing_ok=True)


# The thread count this process's TensorFlow and BLAS were set to (a worker runs many jobs, and
# TensorFlow's pool can be sized only before its first op).
_THREADS: dict = {"count": None}


def use_threads(count: int) -> None:
    """Run TensorFlow's kernels and NumPy's BLAS on `count` threads, whatever the worker count.

    Kernels split their sums by the size of TensorFlow's thread pool, so the pool size is part of
    the numerics (another size changes trained Kim CNN rows in the 9th digit): a fixed size keeps
    metrics equal whatever N_JOBS. One thread per run lets one worker per core use each core
    once; a pool larger than a worker's cores oversubscribes them (two threads on one core made
    runs 1.4-1.8x slower, BLAS's spinning threads in the semantic evaluation most).
    """
    if _THREADS["count"] == count:
        return
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    try:
        tf.config.threading.set_intra_op_parallelism_threads(count)
        tf.config.threading.set_inter_op_parallelism_threads(count)
    except RuntimeError:  # this process ran TensorFlow ops already: its pool stays
        log.warning("threads=%d not applied: TensorFlow started in this process before", count)
    threadpool_limits(limits=count)
    _THREADS["count"] = count


def _is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _finished(metrics_file: Path) -> dict | None:
    if metrics_file.is_file():
        log.info("already finished, skipping: %s", metrics_file)
        return json.loads(metrics_file.read_text())
    return None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> dict | None:
    """One run. In a sweep a failed run returns {"failed": message} rather than raising, so the
    other runs go on and the sweep's summary counts it (embcompare.training.progress)."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    finished = output_dir / "metrics.json"
    if (done := _finished(finished)) is not None:
        return done
    # A second sweep that reaches a run being computed waits for it, then skips it.
    with FileLock(output_dir / ".lock"):
        if (done := _finished(finished)) is not None:
            return done
        try:
            validation.check_config(cfg, HydraConfig.get().overrides.task)
            metrics = execute(cfg, output_dir)
        except Exception as error:
            message = describe_failure(error, output_dir, cfg)
            record_failure(output_dir, error, message)
            if _is_multirun():
                log.error("failed: %s", message)
                return {"failed": message}
            print(f"embcompare: error: {message}", file=sys.stderr)
            sys.exit(2 if isinstance(error, EmbcompareError | OSError) else 1)
        _forget_failure(output_dir)
    if not sweep_progress.reports_each_run():  # else the sweep's progress bar prints its line
        log.info(
            "%s %s n=%s seed=%s: test accuracy %.4f, macro-F1 %.4f (%d epochs, %.1fs)",
            metrics["dataset"],
            metrics["setup"],
            metrics["n"],
            metrics["seed"],
            metrics["test_accuracy"],
            metrics["test_macro_f1"],
            metrics["epochs"],
            metrics["train_seconds"],
        )
    return metrics


if __name__ == "__main__":
    main()
