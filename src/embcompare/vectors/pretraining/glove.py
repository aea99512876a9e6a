"""GloVe's objective (Pennington et al. 2014) as four Keras Embedding layers, and the AdaGrad
step that trains them on batches of co-occurrence entries.

For each nonzero X_ij of the co-occurrence matrix the model predicts log X_ij as
w_i . w~_j + b_i + b~_j, and the loss is the weighted least squares

    J = 1/2 * sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,
    f(x) = min(1, (x / x_max) ^ alpha),

halved as glove.c and mittens compute it, so the losses and gradients read the same as theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from embcompare.vectors.pretraining.corpus import PAD_ID


def glove_weights(counts: np.ndarray, x_max: float, alpha: float) -> np.ndarray:
    """f(x): rare pairs count less, pairs seen x_max times or more count fully."""
    return np.minimum(1.0, (np.asarray(counts, dtype=np.float64) / x_max) ** alpha)


@dataclass
class Entries:
    """The nonzero entries of X: row word, column word, log X and f(X), in float32 as Keras
    trains them."""

    rows: np.ndarray
    columns: np.ndarray
    log_counts: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, chosen: np.ndarray | slice) -> Entries:
        return Entries(
            self.rows[chosen], self.columns[chosen], self.log_counts[chosen], self.weights[chosen]
        )


def nonzero_entries(matrix: scipy.sparse.spmatrix, x_max: float, alpha: float) -> Entries:
    coo = matrix.tocoo()
    return Entries(
        rows=coo.row.astype(np.int32),
        columns=coo.col.astype(np.int32),
        log_counts=np.log(coo.data).astype(np.float32),
        weights=glove_weights(coo.data, x_max, alpha).astype(np.float32),
    )


def entry_batches(entries: Entries, batch_size: int, rng: np.random.Generator) -> Iterator[Entries]:
    """The entries shuffled into fixed-size batches; the last is padded with weight-0 entries
    of the padding row, so one compiled step fits all and the padding never moves."""
    order = rng.permutation(len(entries))
    for start in range(0, len(order), batch_size):
        batch = entries.take(order[start : start + batch_size])
        missing = batch_size - len(batch)
        if missing:
            batch = Entries(
                np.concatenate([batch.rows, np.full(missing, PAD_ID, np.int32)]),
                np.concatenate([batch.columns, np.full(missing, PAD_ID, np.int32)]),
                np.concatenate([batch.log_counts, np.zeros(missing, np.float32)]),
                np.concatenate([batch.weights, np.zeros(missing, np.float32)]),
            )
        yield batch


def build_glove_model(rows: int, dim: int, seed: int):
    """A Keras model mapping (row ids, column ids) to w_i . w~_j + b_i + b~_j.

    All four tables start as glove.c's U(-0.5, 0.5) / dim, biases included.
    """
    import keras
    from keras import ops

    class GloveModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.word_vectors = self._table(rows, dim, "word_vectors", seed)
            self.context_vectors = self._table(rows, dim, "context_vectors", seed + 1)
            self.word_biases = self._table(rows, 1, "word_biases", seed + 2)
            self.context_biases = self._table(rows, 1, "context_biases", seed + 3)

        @staticmethod
        def _table(table_rows: int, width: int, name: str, table_seed: int):
            reach = 0.5 / dim
            initializer = keras.initializers.RandomUniform(-reach, reach, seed=table_seed)
            return keras.layers.Embedding(
                table_rows, width, embeddings_initializer=initializer, name=name
            )

        def call(self, inputs):
            words, contexts = inputs
            dots = ops.sum(self.word_vectors(words) * self.context_vectors(contexts), axis=-1)
            biases = self.word_biases(words)[:, 0] + self.context_biases(contexts)[:, 0]
            return dots + biases

        def tables(self) -> list:
            return [self.word_vectors, self.context_vectors, self.word_biases, self.context_biases]

    model = GloveModel()
    model((np.zeros(1, np.int32), np.zeros(1, np.int32)))
    return model


def glove_loss(model, batch: Entries):
    """J of the batch, summed over its entries (padding has weight 0)."""
    from keras import ops

    errors = model((batch.rows, batch.columns)) - batch.log_counts
    return 0.5 * ops.sum(batch.weights * ops.square(errors))


class SparseAdagrad:
    """A compiled training step: the batch's loss, its gradients, and AdaGrad applied to the
    rows of the batch's words only.

    AdaGrad as in Duchi et al. 2011, mittens and Keras' Adagrad: per weight, G += g^2 then
    w -= learning_rate * g / sqrt(G), G starting at `initial_accumulator`; g is the gradient of
    the batch's summed loss, so a word met several times in a batch gets one update of its
    summed gradient. Keras' own Adagrad would take sqrt(G) of the whole table every step, and
    square each repeat of a row separately; this step touches only the batch's rows.
    """

    def __init__(self, model, learning_rate: float, initial_accumulator: float, jit_compile: bool):
        import tensorflow as tf

        self.model = model
        self.tables = [layer.embeddings.value for layer in model.tables()]  # the tf.Variables
        self.accumulators = [
            tf.Variable(tf.fill(tf.shape(table), initial_accumulator), trainable=False)
            for table in self.tables
        ]
        self.learning_rate = tf.constant(learning_rate, tf.float32)
        self._step = tf.function(self._update, jit_compile=jit_compile)

    def __call__(self, batch: Entries) -> float:
        """Apply one step; returns the batch's loss before it."""
        return float(self._step(batch.rows, batch.columns, batch.log_counts, batch.weights))

    def _update(self, rows, columns, log_counts, weights):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = glove_loss(self.model, Entries(rows, columns, log_counts, weights))
        gradients = tape.gradient(loss, self.tables)
        for table, accumulator, gradient in zip(
            self.tables, self.accumulators, gradients, strict=True
        ):
            ids, summed = sum_repeated_rows(gradient.indices, gradient.values, table.shape[0])
            accumulator.scatter_nd_add(ids[:, None], tf.square(summed))
            scale = tf.math.rsqrt(tf.gather(accumulator, ids))
            table.scatter_nd_sub(ids[:, None], self.learning_rate * summed * scale)
        return loss


def sum_repeated_rows(indices, values, rows: int):
    """(ids, summed rows) with each id once, in a buffer of min(batch, table rows) slots, a
    size fixed at tracing so that XLA can compile it (tf.unique's size is not): sort, number
    the runs of equal ids, sum each run. Unused slots point at the padding row with zero
    values, which leave it unchanged."""
    import tensorflow as tf

    size = min(int(indices.shape[0]), rows)
    order = tf.argsort(indices)
    sorted_ids = tf.gather(indices, order)
    starts_run = tf.concat([[True], sorted_ids[1:] != sorted_ids[:-1]], axis=0)
    slot = tf.cumsum(tf.cast(starts_run, tf.int32)) - 1
    summed = tf.math.unsorted_segment_sum(tf.gather(values, order), slot, size)
    ids = tf.math.unsorted_segment_max(sorted_ids, slot, size)
    used = tf.range(size) <= slot[-1]  # empty slots hold the dtype's lowest value
    return tf.where(used, ids, PAD_ID), summed


@dataclass
class GloveTables:
    """The four tables as arrays, row 0 the padding row: w, w~ (rows x dim), b, b~ (rows x 1)."""

    word_vectors: np.ndarray
    context_vectors: np.ndarray
    word_biases: np.ndarray
    context_biases: np.ndarray

    @classmethod
    def of(cls, model) -> GloveTables:
        return cls(*(np.asarray(layer.embeddings) for layer in model.tables()))

    def as_tuple(self) -> tuple[np.ndarray, ...]:
        return (self.word_vectors, self.context_vectors, self.word_biases, self.context_biases)

    def assign_to(self, model) -> None:
        for layer, table in zip(model.tables(), self.as_tuple(), strict=True):
            layer.embeddings.assign(np.asarray(table, dtype=np.float32))

    def word_vectors_kept(self) -> np.ndarray:
        """W + W~ without the padding row: glove.c's default `-model 2`, which the paper
        found a little better than W alone."""
        return (self.word_vectors + self.context_vectors)[1:].astype(np.float32)


def glove_objective(entries: Entries, tables: GloveTables, chunk: int = 1_000_000) -> float:
    """J of all `entries` at `tables`, in float64 NumPy: the same yardstick for every engine.
    Chunked: gathering every entry's vectors at once would take entries x dim floats."""
    total = 0.0
    for start in range(0, len(entries), chunk):
        part = entries.take(slice(start, start + chunk))
        words = tables.word_vectors[part.rows].astype(np.float64)
        contexts = tables.context_vectors[part.columns].astype(np.float64)
        biases = tables.word_biases[part.rows, 0] + tables.context_biases[part.columns, 0]
        errors = (words * contexts).sum(axis=1) + biases - part.log_counts.astype(np.float64)
        total += 0.5 * float(np.sum(part.weights.astype(np.float64) * errors**2))
    return total
