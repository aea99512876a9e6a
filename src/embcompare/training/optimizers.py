"""Row-sparse ("lazy") Adam and Adadelta for embedding matrices (TensorFlow backend).

The gradient of an embedding lookup is a `tf.IndexedSlices`: one slice per looked-up token.
Keras 3's own Adam and Adadelta turn it into a dense matrix and update every row, and every
row of their moments, on every step, although a batch of 50 sentences touches a few thousand
rows at most. For a 20,000 x 300 matrix that makes a trained embedding ~14x slower than a
frozen one. The optimizers here update only the touched rows; every other variable (dense
gradient) goes through Keras's own update unchanged, so it matches Keras bit for bit.

How lazy Adam differs from dense Adam (the same semantics as TF Addons' LazyAdam):

* A row that is not looked up in a batch is left alone: its weights do not move and its
  first and second moments do not decay. Dense Adam would decay both moments and keep moving
  the row by its leftover momentum although its gradient is zero.
* Bias correction uses the optimizer's global step t, not a per-row count of updates, so a
  row's first update after a long rest has the same step size as a row updated every step.

On rows that are looked up in every step the two are identical. Lazy Adadelta differs from
Keras's Adadelta in the first point (it has no bias correction): untouched rows keep their
accumulators; and, as it runs TensorFlow's fused kernel, by float32 rounding (~1e-7).
`train.optimizer.sparse: false` selects Keras's dense optimizers for exact comparisons.

Speed note: after the first scatter into a variable, TensorFlow keeps it in "copy-on-read"
mode, in which every dense read of the variable copies all of it. Keras's Embedding looks rows
up with `ops.take`, which reads the whole matrix first, so each step then copies the matrix
(at 100k x 300 here ~7 ms a step: 2.1 s instead of 0.8 s a bench epoch). A lookup that
gathers from the variable itself (`tf.gather(layer.embeddings.value, ids)`, a ResourceGather)
reads only the looked-up rows.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def touched_rows(gradient: tf.IndexedSlices) -> tuple[tf.Tensor, tf.Tensor]:
    """Each looked-up row once, with its gradient pieces summed.

    A word that occurs several times in a batch arrives as several slices. Scatter ops keep
    an arbitrary one of repeated indices, so the pieces must be summed first; the sum is the
    row of the dense gradient.
    """
    rows, position = tf.unique(gradient.indices)
    # Sorting the slices by row and summing runs (segment_sum) takes about half the time of
    # unsorted_segment_sum on CPU; a stable sort adds each row's pieces in their original order.
    order = tf.argsort(position, stable=True)
    summed = tf.math.segment_sum(tf.gather(gradient.values, order), tf.gather(position, order))
    return rows, summed


def _read_rows(variable, rows: tf.Tensor) -> tf.Tensor:
    """Gather rows straight from the resource: reading the whole matrix would cost a copy."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return tf.gather(variable, rows)


@keras.saving.register_keras_serializable(package="embcompare")
class SparseAdam(keras.optimizers.Adam):
    """Adam that updates only the looked-up rows of an embedding (lazy Adam; module doc)."""

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, grad = touched_rows(gradient)
        grad = tf.cast(grad, dtype)
        step = tf.cast(self.iterations + 1, dtype)  # the global step, as in Keras's Adam
        beta_1_power = tf.pow(tf.cast(self.beta_1, dtype), step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, dtype), step)
        alpha = tf.cast(learning_rate, dtype) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        index = self._get_variable_index(variable)
        m_var, v_var = self._momentums[index], self._velocities[index]
        # Written as Keras writes them (python-float betas included, whose rounding differs
        # from float32 arithmetic), so a row touched every step matches dense Adam exactly.
        m = _read_rows(m_var, rows)
        m = m + (grad - m) * (1 - self.beta_1)
        v = _read_rows(v_var, rows)
        v = v + (tf.square(grad) - v) * (1 - self.beta_2)
        self.assign(m_var, tf.IndexedSlices(m, rows))
        self.assign(v_var, tf.IndexedSlices(v, rows))
        if self.amsgrad:
            v_hat_var = self._velocity_hats[index]
            v = tf.maximum(_read_rows(v_hat_var, rows), v)
            self.assign(v_hat_var, tf.IndexedSlices(v, rows))
        change = (m * alpha) / (tf.sqrt(v) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(change, rows))


@keras.saving.register_keras_serializable(package="embcompare")
class SparseAdadelta(keras.optimizers.Adadelta):
    """Adadelta that updates only the looked-up rows of an embedding (module doc).

    The rows go through TensorFlow's fused kernel ResourceSparseApplyAdadelta: one op reads,
    updates and writes the weights and both accumulators of each row, where the same update in
    separate ops takes two gathers, ten element-wise ops and three scatters. It computes Keras's
    formulas, except that it multiplies by 1/sqrt(accumulated gradient + epsilon) where Keras
    divides by the square root, so results agree to float32 rounding (~1e-7 relative), not bit
    for bit (tests/test_throughput.py). The kernel applies repeated indices one after another,
    so the rows are de-duplicated (and their pieces summed) first.
    """

    def update_step(self, grad, variable, learning_rate):
        if not isinstance(grad, tf.IndexedSlices):
            return super().update_step(grad, variable, learning_rate)
        dtype = variable.dtype
        rows, grad = touched_rows(grad)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceSparseApplyAdadelta(
            var=_handle(variable),
            accum=_handle(self._accumulated_grads[index]),
            accum_update=_handle(self._accumulated_delta_vars[index]),
            lr=tf.cast(learning_rate, dtype),
            rho=tf.cast(self.rho, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(grad, dtype),
            indices=rows,
        )


def _handle(variable) -> tf.Tensor:
    """The resource handle of a Keras variable (TensorFlow backend), for raw ops."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


# Keras optimizer names (lowercase) with a row-sparse variant here.
SPARSE_OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": SparseAdam,
    "adadelta": SparseAdadelta,
}
