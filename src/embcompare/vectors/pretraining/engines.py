"""The two engines that train word2vec and fastText: the Keras models of objectives.py and
fasttext.py, and gensim."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from embcompare.io import prefetch
from embcompare.vectors.pretraining.corpus import EncodedCorpus
from embcompare.vectors.pretraining.fasttext import (
    build_fasttext_model,
    subword_table,
    to_gensim_fasttext,
    with_subword_inputs,
    word_vectors,
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

    word2vec_arguments = dict(
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
    if not settings.subwords:
        return Word2Vec(**word2vec_arguments)
    return FastText(
        **word2vec_arguments, min_n=settings.min_n, max_n=settings.max_n, bucket=settings.bucket
    )


def gensim_sentences(documents: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Documents cut into pieces gensim takes whole: it silently drops a sentence's words
    beyond the 10,000th."""
    from gensim.models.word2vec import MAX_WORDS_IN_BATCH

    return [
        tokens[start : start + MAX_WORDS_IN_BATCH]
        for tokens in documents
        for start in range(0, len(tokens), MAX_WORDS_IN_BATCH)
    ]
