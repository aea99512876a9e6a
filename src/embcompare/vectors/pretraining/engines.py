"""Train word2vec on an unlabelled corpus: in Keras, or with gensim for comparison.

    embcompare pretrain method=keras_sgns corpus=imdb_unsup
    embcompare pretrain method=gensim sg=1 corpus=imdb_unsup

The Keras methods show that a Keras `Embedding` can itself be trained as word2vec
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

Vectors go to ${paths.cache_dir}/pretrained/<engine>-<arch>-<corpus>-<dim>d/ (vectors.npy +
words.txt, read by `format: npy_words`) with pretrain.json (settings, corpus size, wall time,
word-similarity scores). A rerun with the same settings reuses them.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from embcompare.errors import EmbcompareError

METHODS = {"keras_sgns": ("keras", 1), "keras_cbow": ("keras", 0), "gensim": ("gensim", None)}
PAD_ID = 0
CHUNK_TOKENS = 500_000  # tokens turned into examples at once: bounds memory, keeps shuffling wide
PREFETCH_BATCHES = 8  # batches built ahead in a thread while TensorFlow runs the previous ones


# --- settings and where the vectors go ------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything that changes the trained vectors.

    gensim's worker count is among them: one thread gives the same vectors in every process,
    several interleave their updates differently every run.
    """

    method: str
    corpus: str
    sg: int
    dim: int
    window: int
    negative: int
    min_count: int
    epochs: int
    sample: float
    learning_rate: float
    min_learning_rate: float
    batch_size: int | None
    seed: int
    max_tokens: int | None
    workers: int | None = None

    @property
    def engine(self) -> str:
        return METHODS[self.method][0]

    @property
    def arch(self) -> str:
        return "sgns" if self.sg else "cbow"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def settings_from(cfg: DictConfig) -> Settings:
    method = cfg.method
    if method not in METHODS:
        raise EmbcompareError(f"method={method!r} is unknown; choose one of {sorted(METHODS)}")
    engine, fixed_sg = METHODS[method]
    sg = cfg.sg
    if sg not in (0, 1) or (fixed_sg is not None and sg != fixed_sg):
        allowed = "0 or 1" if fixed_sg is None else str(fixed_sg)
        raise EmbcompareError(f"sg={cfg.sg} does not fit method={method}: use sg={allowed}")
    return Settings(
        method=method,
        corpus=cfg.corpus.name,
        sg=int(sg),
        dim=_positive_int(cfg, "dim"),
        window=_positive_int(cfg, "window"),
        negative=_positive_int(cfg, "negative"),
        min_count=_positive_int(cfg, "min_count"),
        epochs=_positive_int(cfg, "epochs"),
        sample=_number(cfg, "sample"),
        learning_rate=_number(cfg, "learning_rate"),
        min_learning_rate=_number(cfg, "min_learning_rate"),
        # gensim has no batches: leaving the size out keeps it from invalidating gensim's cache
        batch_size=_positive_int(cfg, "batch_size") if engine == "keras" else None,
        seed=int(_number(cfg, "seed")),
        max_tokens=None if cfg.max_tokens is None else _positive_int(cfg, "max_tokens"),
        workers=_positive_int(cfg, "workers") if engine == "gensim" else None,
    )


def _positive_int(cfg: DictConfig, key: str) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EmbcompareError(f"{key}={value!r} must be a positive integer")
    return value


def _number(cfg: DictConfig, key: str) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EmbcompareError(f"{key}={value!r} must be a number >= 0")
    return float(value)


def output_dir(cfg: DictConfig, settings: Settings) -> Path:
    """A name predictable from the config, so that conf/embedding/*.yaml can point at it."""
    name = cfg.output_name or (
        f"{settings.engine}-{settings.arch}-{settings.corpus}-{settings.dim}d"
    )
    return Path(cfg.paths.cache_dir).expanduser().absolute() / "pretrained" / str(name)


def cached_report(directory: Path, settings: Settings, overwrite: bool) -> dict | None:
    """The earlier report when `directory` holds vectors of these very settings, else None.

    Vectors of other settings are only replaced on request: runs may already have used them.
    """
    report_path = directory / "pretrain.json"
    if not directory.exists():
        return None
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        # a setting missing from an older report counts as None, so adding one keeps old caches
        changed = _differences(report.get("settings", {}), settings.as_dict())
        if not changed:
            return report
        if not overwrite:
            raise EmbcompareError(
                f"{directory}: holds vectors trained with other settings ({changed}); "
                "add overwrite=true to replace them, or output_name=<new name> to keep both"
            )
    # other settings (overwrite=true), or a run that died before writing pretrain.json
    shutil.rmtree(directory)
    return None


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)} there, {new.get(k)} now" for k in keys)


# --- vocabulary and the encoded corpus ------------------------------------------------------


@dataclass
class EncodedCorpus:
    """Word ids (1-based: row 0 is padding) of the in-vocabulary tokens, with document ids."""

    words: list[str]  # the word of row i + 1, most frequent first
    counts: np.ndarray  # count of row i + 1
    ids: np.ndarray
    documents: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.words) + 1


def encode_corpus(documents: Sequence[Sequence[str]], min_count: int) -> EncodedCorpus:
    """Words seen `min_count` times or more, by falling count (ties alphabetical); rarer words
    are dropped from the text, as word2vec does, which widens the windows around them."""
    counts = Counter(token for tokens in documents for token in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if not words:
        raise EmbcompareError(f"min_count={min_count}: no word of the corpus occurs that often")
    row = {w: i for i, w in enumerate(words, start=1)}
    ids, doc_ids = [], []
    for number, tokens in enumerate(documents):
        encoded = np.fromiter((row.get(t, PAD_ID) for t in tokens), np.int32, len(tokens))
        encoded = encoded[encoded != PAD_ID]
        ids.append(encoded)
        doc_ids.append(np.full(len(encoded), number, np.int32))
    return EncodedCorpus(
        words=words,
        counts=np.array([counts[w] for w in words], dtype=np.int64),
        ids=np.concatenate(ids),
        documents=np.concatenate(doc_ids),
    )


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: P(keep) per row, 1 for words below the `sample` share."""
    keep = np.ones(len(counts) + 1)
    if sample > 0:
        threshold = sample * counts.sum()
        keep[1:] = np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)
    return keep


class NoiseSampler:
    """Noise words drawn from counts ** 0.75; the padding row has probability zero."""

    def __init__(self, counts: np.ndarray, power: float = 0.75):
        weights = np.asarray(counts, dtype=np.float64) ** power
        self.cumulative = np.cumsum(weights)

    def draw(self, shape, rng: np.random.Generator) -> np.ndarray:
        points = rng.random(shape) * self.cumulative[-1]
        # `right`: a point on a boundary belongs to the next word; the minimum guards against
        # a product rounding up to the total
        rows = np.searchsorted(self.cumulative, points, side="right")
        return (np.minimum(rows, len(self.cumulative) - 1) + 1).astype(np.int32)


# --- training examples ----------------------------------------------------------------------


def skipgram_pairs(
    ids: np.ndarray, documents: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(target, context) pairs within each position's own window and the same document."""
    reach = rng.integers(1, window + 1, size=len(ids))
    targets, contexts = [], []
    for distance in range(1, window + 1):
        same_doc = documents[distance:] == documents[:-distance]
        rightward = same_doc & (reach[:-distance] >= distance)  # target i, context i + d
        leftward = same_doc & (reach[distance:] >= distance)  # target i + d, context i
        targets += [ids[:-distance][rightward], ids[distance:][leftward]]
        contexts += [ids[distance:][rightward], ids[:-distance][leftward]]
    return np.concatenate(targets), np.concatenate(contexts)


def cbow_windows(
    ids: np.ndarray, documents: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(context rows padded with 0 to 2 * window, centre word) for positions with a context."""
    size = len(ids)
    reach = rng.integers(1, window + 1, size=size)
    contexts = np.zeros((size, 2 * window), dtype=np.int32)
    for column, distance in enumerate(range(1, window + 1)):
        same_doc = documents[distance:] == documents[:-distance]
        after = same_doc & (reach[:-distance] >= distance)
        before = same_doc & (reach[distance:] >= distance)
        contexts[:-distance, 2 * column] = np.where(after, ids[distance:], PAD_ID)
        contexts[distance:, 2 * column + 1] = np.where(before, ids[:-distance], PAD_ID)
    has_context = (contexts != PAD_ID).any(axis=1)
    return contexts[has_context], ids[has_context]


@dataclass
class Batch:
    """`inputs` (target ids for skip-gram, padded context ids for CBOW) predict column 0 of
    `candidates`, against the noise words in the other columns. `weights` zero out padding
    examples and noise words that equal the positive word."""

    inputs: np.ndarray
    candidates: np.ndarray
    weights: np.ndarray


def make_batches(
    inputs: np.ndarray,
    positives: np.ndarray,
    noise: NoiseSampler,
    negative: int,
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[Batch]:
    """Shuffled fixed-size batches: the last is padded (weight 0) so one compiled step fits all."""
    order = rng.permutation(len(positives))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        real = len(chosen)
        batch_inputs = _pad_rows(inputs[chosen], batch_size)
        positive = _pad_rows(positives[chosen], batch_size)
        negatives = noise.draw((batch_size, negative), rng)
        candidates = np.concatenate([positive[:, None], negatives], axis=1)
        weights = np.ones(candidates.shape, dtype=np.float32)
        weights[:, 1:] *= negatives != positive[:, None]
        weights[real:] = 0.0
        yield Batch(batch_inputs, candidates, weights)


def _pad_rows(array: np.ndarray, size: int) -> np.ndarray:
    if len(array) == size:
        return array
    padding = np.full((size - len(array), *array.shape[1:]), PAD_ID, dtype=array.dtype)
    return np.concatenate([array, padding])


def epoch_batches(
    corpus: EncodedCorpus, settings: Settings, rng: np.random.Generator
) -> Iterator[tuple[Batch, float]]:
    """One epoch of batches, each with the share of the epoch's tokens done after it."""
    keep = keep_probabilities(corpus.counts, settings.sample)
    kept = rng.random(len(corpus.ids)) < keep[corpus.ids]
    ids, documents = corpus.ids[kept], corpus.documents[kept]
    noise = NoiseSampler(corpus.counts)
    make_examples = skipgram_pairs if settings.sg else cbow_windows
    for start in range(0, len(ids), CHUNK_TOKENS):
        stop = min(start + CHUNK_TOKENS, len(ids))
        inputs, positives = make_examples(
            ids[start:stop], documents[start:stop], settings.window, rng
        )
        count = -(-len(positives) // settings.batch_size)
        batches = make_batches(
            inputs, positives, noise, settings.negative, settings.batch_size, rng
        )
        for number, batch in enumerate(batches, start=1):
            yield batch, (start + (stop - start) * number / count) / len(ids)


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Produce `items` in a thread: NumPy builds the next batches while TensorFlow, which
    releases the GIL, runs the current one."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(done)
        except BaseException as error:  # handed over to the consumer, which re-raises it
            slots.put(error)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.01)


# --- the Keras model and its training -------------------------------------------------------


def build_word2vec_model(rows: int, dim: int, sg: int, seed: int):
    """A Keras model mapping (inputs, candidates) to one logit per candidate.

    `word_vectors` (the vectors kept) start as word2vec's U(-0.5/dim, 0.5/dim); `output_vectors`
    start at zero, as in word2vec.c.
    """
    import keras
    from keras import ops

    class Word2VecModel(keras.Model):
        def __init__(self):
            super().__init__()
            initializer = keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=seed)
            self.word_vectors = keras.layers.Embedding(
                rows, dim, embeddings_initializer=initializer, name="word_vectors"
            )
            self.output_vectors = keras.layers.Embedding(
                rows, dim, embeddings_initializer="zeros", name="output_vectors"
            )

        def call(self, inputs):
            words, candidates = inputs
            hidden = self.word_vectors(words) if sg else self._context_mean(words)
            outputs = self.output_vectors(candidates)  # batch x (1 + negative) x dim
            return ops.squeeze(ops.matmul(outputs, ops.expand_dims(hidden, -1)), -1)

        def _context_mean(self, contexts):
            mask = ops.cast(ops.not_equal(contexts, PAD_ID), "float32")[..., None]
            total = ops.sum(self.word_vectors(contexts) * mask, axis=1)
            mean = total / ops.maximum(ops.sum(mask, axis=1), 1.0)
            # forward: the mean; backward: each context word gets the full error, as in
            # word2vec.c and gensim (autodiff of the mean would divide it by the count)
            return ops.stop_gradient(mean - total) + total

    model = Word2VecModel()
    model((np.zeros((1,) if sg else (1, 2), np.int32), np.zeros((1, 2), np.int32)))
    return model


def make_train_step(model, jit_compile: bool) -> Callable:
    """A compiled SGD step. Embedding gradients are IndexedSlices and Keras' SGD applies them
    with a scatter, so a step costs the rows it touches, not the whole table."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(learning_rate=0.0)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=jit_compile)
    def step(inputs, candidates, weights, learning_rate):
        optimizer.learning_rate.assign(learning_rate)
        with tf.GradientTape() as tape:
            logits = model((inputs, candidates))
            labels = tf.concat([tf.ones_like(logits[:, :1]), tf.zeros_like(logits[:, 1:])], 1)
            losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
            # summed, not averaged: each pair moves its rows as much as in word2vec.c
            loss = tf.reduce_sum(weights * losses)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    return step


def train_keras(corpus: EncodedCorpus, settings: Settings, jit_compile: bool) -> dict:
    import keras

    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = build_word2vec_model(corpus.rows, settings.dim, settings.sg, settings.seed)
    step = make_train_step(model, jit_compile)
    losses, examples, steps = [], 0, 0
    total = settings.epochs * len(corpus.ids)
    with tqdm(total=total, unit="tok", unit_scale=True, desc=settings.method) as bar:
        for epoch in range(settings.epochs):
            loss, epoch_examples, epoch_steps = _train_epoch(
                step, corpus, settings, epoch, rng, bar
            )
            losses.append(loss)
            examples, steps = examples + epoch_examples, steps + epoch_steps
    return {
        "words": corpus.words,
        "vectors": np.asarray(model.word_vectors.embeddings)[1:],  # row 0 is padding
        "details": {
            "tokens_in_vocab": len(corpus.ids),
            "steps": steps,
            "examples": examples,
            "loss_per_example": losses,
        },
    }


def _train_epoch(step, corpus, settings: Settings, epoch: int, rng, bar) -> tuple[float, int, int]:
    """One pass; returns the mean loss per example, the examples and the steps."""
    import tensorflow as tf

    loss_sum, examples, steps = 0.0, 0, 0
    for batch, done in prefetch(epoch_batches(corpus, settings, rng), PREFETCH_BATCHES):
        progress = (epoch + done) / settings.epochs
        start, end = settings.learning_rate, settings.min_learning_rate
        rate = tf.constant(start - (start - end) * progress, tf.float32)
        loss_sum += float(step(batch.inputs, batch.candidates, batch.weights, rate))
        examples += int(batch.weights[:, 0].sum())
        steps += 1
        bar.update(round(progress * bar.total) - bar.n)
        if steps % 50 == 0:
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / examples:.3f}")
    return loss_sum / max(examples, 1), examples, steps


# --- gensim -------------------------------------------------------------------------------


def train_gensim(documents: Sequence[Sequence[str]], settings: Settings) -> dict:
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochBar(CallbackAny2Vec):
        """gensim reports progress to logging only; a bar per epoch is what users watch."""

        def __init__(self, bar):
            self.bar = bar

        def on_epoch_end(self, model):
            self.bar.update(1)

    model = Word2Vec(
        vector_size=settings.dim,
        window=settings.window,
        negative=settings.negative,
        min_count=settings.min_count,
        sample=settings.sample,
        sg=settings.sg,
        alpha=settings.learning_rate,
        min_alpha=settings.min_learning_rate,
        seed=settings.seed,
        workers=settings.workers,
    )
    sentences = gensim_sentences(documents)
    model.build_vocab(sentences)
    with tqdm(total=settings.epochs, unit="epoch", desc=f"gensim {settings.arch}") as bar:
        model.train(
            sentences,
            total_examples=model.corpus_count,
            epochs=settings.epochs,
            callbacks=[EpochBar(bar)],
        )
    return {
        "words": list(model.wv.index_to_key),
        "vectors": model.wv.vectors,
        "details": {},
    }


def gensim_sentences(documents: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Documents cut into pieces gensim takes whole: it silently drops a sentence's words
    beyond the 10,000th."""
    from gensim.models.word2vec import MAX_WORDS_IN_BATCH

    return [
        tokens[start : start + MAX_WORDS_IN_BATCH]
        for tokens in documents
        for start in range(0, len(tokens), MAX_WORDS_IN_BATCH)
    ]


# --- word similarity ----------------------------------------------------------------------


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


# --- the command --------------------------------------------------------------------------


def pretrain(cfg: DictConfig) -> dict:
    """Train (or reuse) the vectors `cfg` describes; return the report written to pretrain.json."""
    from embcompare.data.corpus import read_corpus
    from embcompare.data.fetch import data_dir_from
    from embcompare.io import write_json_atomic
    from embcompare.vectors.pretrained import write_cache

    settings = settings_from(cfg)
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
    else:
        corpus = encode_corpus(documents, settings.min_count)
        result = train_keras(corpus, settings, bool(cfg.jit_compile))
    train_seconds = time.perf_counter() - trained
    write_cache(directory, result["words"], result["vectors"])
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
