"""Train word2vec, fastText or GloVe on an unlabelled corpus: in Keras, or with gensim or
mittens for comparison.

    embcompare pretrain method=keras_sgns corpus=imdb_unsup
    embcompare pretrain method=gensim sg=1 corpus=imdb_unsup
    embcompare pretrain method=keras_fasttext corpus=imdb_unsup
    embcompare pretrain method=keras_glove corpus=imdb_unsup
    embcompare pretrain method=mittens_glove corpus=imdb_unsup max_words=5000

The Keras word2vec methods show that a Keras `Embedding` can itself be trained as word2vec
(Mikolov et al. 2013): one Embedding holds the word vectors, a second one the output vectors,
and a dot product scored by a sigmoid separates observed (word, context) pairs from `negative`
noise words drawn from the unigram distribution raised to 0.75. As in word2vec.c:
  - words rarer than `min_count` are removed from the text before windows are taken;
  - frequent words are subsampled: a token is kept with probability (sqrt(f / s) + 1) s / f,
    f its word's share of the tokens and s = `sample`, drawn anew each epoch;
  - each position draws its own window size, uniform in 1..`window`, so near words count more;
  - plain SGD on the summed (not averaged) loss, so the learning rate means what it means in
    word2vec, decaying linearly from `learning_rate` to `min_learning_rate`;
  - a negative equal to the positive word is skipped (its loss is masked).
Unlike word2vec.c, which updates after every pair, a step applies `batch_size` pairs at once.
Row 0 of both tables is padding: CBOW pads short windows with it, a part-filled last batch is
padded with zero-weight examples, and it is never drawn as a noise word.

fastText (method=keras_fasttext, gensim_fasttext; Bojanowski et al. 2017) is skip-gram whose
input vector for a word is the mean of its own row and its character n-grams' rows
(fasttext.py), so that words never seen get vectors from their n-grams.

GloVe (method=keras_glove; Pennington et al. 2014) is four Keras Embeddings fitted to the log
co-occurrence counts (cooccurrence.py, glove.py); method=mittens_glove trains the same
objective with mittens, in NumPy, on the dense matrix of the `max_words` most frequent words.

Vectors go to ${paths.cache_dir}/pretrained/<engine>-<arch>-<corpus>-<dim>d/ (vectors.npy +
words.txt, read by `format: npy_words`) with pretrain.json (settings, corpus size, wall time,
word-similarity scores); fastText adds model.bin, the whole model in Facebook's format. A
rerun with the same settings reuses them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from embcompare.errors import EmbcompareError
from embcompare.vectors.pretraining.corpus import encode_corpus
from embcompare.vectors.pretraining.engines import (
    check_mittens_memory,
    train_gensim,
    train_glove,
    train_keras,
)
from embcompare.vectors.pretraining.settings import cached_report, output_dir, settings_from


def similarity_scores(cfg: DictConfig, words: Sequence[str], vectors: np.ndarray) -> dict:
    """Spearman of cosine against human scores per benchmark; OOV pairs are skipped."""
    from embcompare.analysis import similarity
    from embcompare.analysis import word_benchmarks as benchmarks
    from embcompare.data.fetch import data_dir_from, ensure_file

    data_dir = data_dir_from(cfg.paths.data_dir)
    space = similarity.Space("pretrained", words, vectors, bool(cfg.similarity.lowercase))
    scores = {}
    for name in cfg.benchmarks:
        if name not in cfg.similarity.benchmarks:
            known = sorted(cfg.similarity.benchmarks)
            raise EmbcompareError(f"benchmarks: {name!r} is not in similarity.benchmarks {known}")
        path = ensure_file(cfg.similarity.benchmarks[name], data_dir, cfg.paths.mirror)
        pairs = benchmarks.read_word_pairs(path, name)
        scores[name] = similarity.score_similarity(space, pairs).as_dict()
    return scores


def format_summary(report: dict) -> str:
    from embcompare.analysis.semantic import similarity_table

    lines = [
        f"{report['settings']['method']} ({report['arch']}) on {report['settings']['corpus']}: "
        f"{report['vocab_size']} words x {report['settings']['dim']}, "
        f"{report['tokens']} tokens, trained in {report['train_seconds']:.1f}s",
        *similarity_table(report["similarity"]),
    ]
    lines.append(f"vectors: {report['output_dir']}")
    return "\n".join(lines)


def pretrain(cfg: DictConfig) -> dict:
    """Train (or reuse) the vectors `cfg` describes; return the report written to pretrain.json."""
    from embcompare.data.corpus import read_corpus
    from embcompare.data.fetch import data_dir_from
    from embcompare.io import write_json_atomic
    from embcompare.vectors.pretrained import FASTTEXT_MODEL_FILE, write_cache

    settings = settings_from(cfg)
    if settings.engine == "mittens":  # before the corpus is read: a k too large fails at once
        check_mittens_memory(settings.max_words, float(cfg.mittens_max_gib))
    directory = output_dir(cfg, settings)
    cached = cached_report(directory, settings, bool(cfg.overwrite))
    if cached is not None:
        print(f"reusing cached vectors in {directory} (same settings; delete it to retrain)")
        return cached
    started = time.perf_counter()
    documents = read_corpus(
        cfg.corpus, data_dir_from(cfg.paths.data_dir), cfg.paths.mirror, settings.max_tokens
    )
    read_seconds = time.perf_counter() - started
    trained = time.perf_counter()
    if settings.engine == "gensim":
        result = train_gensim(documents, settings)
    elif settings.arch == "glove":
        corpus = encode_corpus(documents, settings.min_count)
        result = train_glove(corpus, settings, bool(cfg.jit_compile))
    else:
        corpus = encode_corpus(documents, settings.min_count)
        result = train_keras(corpus, settings, bool(cfg.jit_compile))
    train_seconds = time.perf_counter() - trained
    write_cache(directory, result["words"], result["vectors"])
    if "fasttext_model" in result:
        save_fasttext_model(result["fasttext_model"], directory / FASTTEXT_MODEL_FILE)
    report = {
        "settings": settings.as_dict(),
        "arch": settings.arch,
        "output_dir": str(directory),
        "tokens": sum(len(tokens) for tokens in documents),
        "documents": len(documents),
        "vocab_size": len(result["words"]),
        "read_seconds": read_seconds,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "cpu_count": os.cpu_count(),
        **result["details"],
        "similarity": similarity_scores(cfg, result["words"], result["vectors"]),
    }
    write_json_atomic(directory / "pretrain.json", report)  # last: it marks the cache complete
    return report


def save_fasttext_model(model, path: Path) -> None:
    """The whole model in Facebook's .bin format (read back by `format: fasttext_bin`), written
    under a temporary name: a model cut short by a crash never sits under the real one."""
    from gensim.models.fasttext import save_facebook_model

    from embcompare.io import write_atomic

    write_atomic(path, lambda staging: save_facebook_model(model, str(staging)))


def compose_config(overrides: list[str]) -> DictConfig:
    from omegaconf.errors import OmegaConfBaseException

    from embcompare.config import compose

    cfg = compose("pretrain", overrides)
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as error:
        message = " ".join(str(error).split())
        raise EmbcompareError(f"bad pretrain arguments {overrides}: {message}") from None
    return cfg


def main(overrides: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    report = pretrain(compose_config(overrides))
    print(format_summary(report))
    return 0
