"""The engines: word2vec and fastText trained as the Keras models of objectives.py and
fasttext.py or by gensim, and GloVe trained as the Keras model of glove.py or by mittens, both
on the counts of cooccurrence.py."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse
from tqdm import tqdm

from embcompare.errors import EmbcompareError
from embcompare.io import prefetch
from embcompare.vectors.pretraining.cooccurrence import count_cooccurrences, top_words
from embcompare.vectors.pretraining.corpus import EncodedCorpus
from embcompare.vectors.pretraining.fasttext import (
    build_fasttext_model,
    subword_table,
    to_gensim_fasttext,
    with_subword_inputs,
    word_vectors,
)
from embcompare.vectors.pretraining.glove import (
    Entries,
    GloveTables,
    SparseAdagrad,
    build_glove_model,
    entry_batches,
    glove_objective,
    nonzero_entries,
)
from embcompare.vectors.pretraining.objectives import (
    build_word2vec_model,
    epoch_batches,
    make_train_step,
)
from embcompare.vectors.pretraining.settings import Settings

PREFETCH_BATCHES = 8  # batches built ahead in a thread while TensorFlow runs the previous ones


def train_keras(corpus: EncodedCorpus, settings: Settings, jit_compile: bool) -> dict:
    """Keras word2vec, or fastText for a subword method (then also a gensim FastText holding
    the Keras tables, as `fasttext_model`, to be saved whole)."""
    import keras

    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if settings.subwords:
        table = subword_table(corpus.words, settings.min_n, settings.max_n, settings.bucket)
        model = build_fasttext_model(table, settings.dim, settings.seed)
    else:
        table = None
        model = build_word2vec_model(corpus.rows, settings.dim, settings.sg, settings.seed)
    step = make_train_step(model, jit_compile)
    losses, examples, steps = [], 0, 0
    total = settings.epochs * len(corpus.ids)
    with tqdm(total=total, unit="tok", unit_scale=True, desc=settings.method) as bar:
        for epoch in range(settings.epochs):
            batches = epoch_batches(corpus, settings, rng)
            if table is not None:
                batches = with_subword_inputs(batches, table)
            loss, epoch_examples, epoch_steps = _train_epoch(step, batches, settings, epoch, bar)
            losses.append(loss)
            examples, steps = examples + epoch_examples, steps + epoch_steps
    result = {
        "words": corpus.words,
        "details": {
            "tokens_in_vocab": len(corpus.ids),
            "steps": steps,
            "examples": examples,
            "loss_per_example": losses,
        },
    }
    if table is None:
        result["vectors"] = np.asarray(model.word_vectors.embeddings)[1:]  # row 0 is padding
    else:
        result["vectors"] = word_vectors(model, table)
        result["fasttext_model"] = to_gensim_fasttext(model, corpus, table, settings)
    return result


def _train_epoch(step, batches, settings: Settings, epoch: int, bar) -> tuple[float, int, int]:
    """One pass; returns the mean loss per example, the examples and the steps."""
    import tensorflow as tf

    loss_sum, examples, steps = 0.0, 0, 0
    for batch, done in prefetch(batches, PREFETCH_BATCHES):
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


def train_gensim(documents: Sequence[Sequence[str]], settings: Settings) -> dict:
    """gensim's Word2Vec, or its FastText for a subword method; a FastText model is returned
    too (as `fasttext_model`), to be saved whole."""
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochBar(CallbackAny2Vec):
        """gensim reports progress to logging only; a bar per epoch is what users watch."""

        def __init__(self, bar):
            self.bar = bar

        def on_epoch_end(self, model):
            self.bar.update(1)

    model = gensim_model(settings)
    sentences = gensim_sentences(documents)
    model.build_vocab(sentences)
    description = f"{settings.method} {settings.arch}"
    with tqdm(total=settings.epochs, unit="epoch", desc=description) as bar:
        model.train(
            sentences,
            total_examples=model.corpus_count,
            epochs=settings.epochs,
            callbacks=[EpochBar(bar)],
        )
    result = {"words": list(model.wv.index_to_key), "vectors": model.wv.vectors, "details": {}}
    if settings.subwords:
        result["fasttext_model"] = model
    return result


def gensim_model(settings: Settings):
    """An untrained Word2Vec, or FastText for a subword method: both take the word2vec
    hyperparameters, FastText its n-gram settings as well."""
    from gensim.models import FastText, Word2Vec

    if not settings.subwords:
        return Word2Vec(**settings.gensim_arguments())
    return FastText(**settings.gensim_arguments(), **settings.subword_arguments())


def gensim_sentences(documents: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Documents cut into pieces gensim takes whole: it silently drops a sentence's words
    beyond the 10,000th."""
    from gensim.models.word2vec import MAX_WORDS_IN_BATCH

    return [
        tokens[start : start + MAX_WORDS_IN_BATCH]
        for tokens in documents
        for start in range(0, len(tokens), MAX_WORDS_IN_BATCH)
    ]


def train_glove(corpus: EncodedCorpus, settings: Settings, jit_compile: bool) -> dict:
    """GloVe by `settings.engine` on the co-occurrence counts of `corpus`, restricted to the
    `max_words` most frequent words when set."""
    started = time.perf_counter()
    full = count_cooccurrences(corpus, settings.window)
    matrix = top_words(full, settings.max_words)
    counted = time.perf_counter() - started
    print(f"co-occurrences: {full.nnz} nonzeros in {counted:.1f}s; {matrix.nnz} kept")
    entries = nonzero_entries(matrix, settings.x_max, settings.alpha)
    if settings.engine == "keras":
        tables, losses = train_keras_glove(entries, matrix.shape[0], settings, jit_compile)
    else:
        tables, losses = train_mittens_glove(matrix, settings)
    return {
        "words": corpus.words[: matrix.shape[0] - 1],
        "vectors": tables.word_vectors_kept(),
        "details": {
            "nonzeros": full.nnz,
            "nonzeros_kept": matrix.nnz,
            "cooccurrence_seconds": counted,
            "loss_per_epoch": losses,
            "final_loss": glove_objective(entries, tables),
        },
    }


def train_keras_glove(
    entries: Entries,
    rows: int,
    settings: Settings,
    jit_compile: bool,
    initial: GloveTables | None = None,
) -> tuple[GloveTables, list[float]]:
    """AdaGrad over the shuffled entries in batches of `batch_size`; returns the tables and J
    summed over each epoch's batches (each taken before its step, as glove.c and mittens
    report it). `initial` replaces glove.c's random start, for comparisons."""
    import keras

    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = build_glove_model(rows, settings.dim, settings.seed)
    if initial is not None:
        initial.assign_to(model)
    trainer = SparseAdagrad(
        model, settings.learning_rate, settings.initial_accumulator, jit_compile
    )
    losses = []
    with tqdm(total=settings.epochs * len(entries), unit="pair", unit_scale=True) as bar:
        for epoch in range(settings.epochs):
            loss = 0.0
            batches = entry_batches(entries, settings.batch_size, rng)
            for batch in prefetch(batches, PREFETCH_BATCHES):
                loss += trainer(batch)
                bar.update(int((batch.weights > 0).sum()))
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss / len(entries):.4f}")
            losses.append(loss)
    return GloveTables.of(model), losses


MITTENS_DENSE_ARRAYS = 9  # k x k float64 arrays mittens holds at once (peak measured: 8.3)


def check_mittens_memory(max_words: int | None, limit_gib: float) -> None:
    """mittens works on the dense k x k matrix: refuse a k whose arrays would not fit."""
    if max_words is None:
        raise EmbcompareError(
            "method=mittens_glove needs max_words=<k>: mittens trains on the dense k x k "
            "co-occurrence matrix of the k most frequent words"
        )
    needed = MITTENS_DENSE_ARRAYS * 8 * max_words**2 / 2**30
    if needed > limit_gib:
        largest = int((limit_gib * 2**30 / (MITTENS_DENSE_ARRAYS * 8)) ** 0.5)
        raise EmbcompareError(
            f"max_words={max_words}: mittens would hold {MITTENS_DENSE_ARRAYS} dense "
            f"{max_words} x {max_words} float64 arrays, {needed:.1f} GiB, over "
            f"mittens_max_gib={limit_gib:g}; use max_words<={largest} or raise mittens_max_gib"
        )


def train_mittens_glove(
    matrix: scipy.sparse.csr_matrix, settings: Settings, initial: GloveTables | None = None
) -> tuple[GloveTables, list[float]]:
    """mittens' NumPy GloVe: full-batch AdaGrad (every step sees the whole matrix), its sums
    starting at 0.1, for `epochs` steps. Started from `initial`, else from mittens' own
    Xavier-uniform init drawn with `seed` (mittens would reseed NumPy from the clock)."""
    numpy_glove = import_numpy_mittens()
    words = matrix.shape[0] - 1
    if initial is None:
        initial = mittens_initial_tables(words, settings.dim, np.random.default_rng(settings.seed))
    glove = numpy_glove(
        n=settings.dim,
        xmax=settings.x_max,
        alpha=settings.alpha,
        max_iter=settings.epochs,
        learning_rate=settings.learning_rate,
        display_progress=10,  # its own progress line on stderr, every 10 steps
        test_mode=True,  # the only way mittens takes given starting weights
    )
    # mittens has no padding row; it sees rows and columns 1.. of the matrix
    start = {
        name: np.array(table[1:], dtype=np.float64)  # copies: mittens updates them in place
        for name, table in zip(("W", "C", "bw", "bc"), initial.as_tuple(), strict=True)
    }
    glove.fit(matrix[1:, 1:].toarray(), fixed_initialization=start)
    trained = GloveTables(*(_with_padding_row(t) for t in (glove.W, glove.C, glove.bw, glove.bc)))
    return trained, [float(error) for error in glove.errors]


def mittens_initial_tables(words: int, dim: int, rng: np.random.Generator) -> GloveTables:
    """mittens' own start: Xavier-uniform U(-r, r), r = sqrt(6 / (rows + columns)) of each
    table (words x dim vectors, words x 1 biases)."""

    def uniform(columns: int) -> np.ndarray:
        reach = np.sqrt(6.0 / (words + columns))
        return _with_padding_row(rng.uniform(-reach, reach, size=(words, columns)))

    return GloveTables(uniform(dim), uniform(dim), uniform(1), uniform(1))


def _with_padding_row(table: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, table.shape[1])), table]).astype(np.float32)


def import_numpy_mittens():
    """mittens' NumPy GloVe class, imported without running `mittens/__init__.py`: that
    imports mittens' TensorFlow version, which turns TensorFlow's eager execution off for the
    whole process and so breaks every Keras model after it. The package is registered
    unexecuted, so a later `import mittens` in this process gets it empty."""
    spec = importlib.util.find_spec("mittens")
    if spec is None:
        raise EmbcompareError(
            "method=mittens_glove needs the mittens package: pip install 'mittens==0.2' "
            "(or the project's extra: pip install -e '.[mittens]')"
        )
    if "mittens" not in sys.modules:
        sys.modules["mittens"] = importlib.util.module_from_spec(spec)
    return importlib.import_module("mittens.np_mittens").GloVe
