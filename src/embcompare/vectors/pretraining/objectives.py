"""What word2vec predicts from what, as two Keras Embedding layers: skip-gram pairs and CBOW
windows, their batches with noise words, the model scoring them and its SGD step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from embcompare.vectors.pretraining.corpus import (
    PAD_ID,
    EncodedCorpus,
    NoiseSampler,
    keep_probabilities,
)
from embcompare.vectors.pretraining.settings import Settings

CHUNK_TOKENS = 500_000  # tokens turned into examples at once: bounds memory, keeps shuffling wide


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
