"""Claim (c): an Embedding layer is a bias-free Dense layer on one-hot inputs, its weights
shared across positions. Same outputs and same gradients with respect to the matrix."""

import keras
import numpy as np
import tensorflow as tf

VOCAB, DIM, BATCH, LENGTH = 50, 6, 4, 7


def test_embedding_equals_dense_on_one_hot_in_outputs_and_gradients():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(VOCAB, DIM)).astype(np.float32)
    token_ids = rng.integers(0, VOCAB, size=(BATCH, LENGTH)).astype(np.int32)
    token_ids[0, :3] = 5  # a repeated word: its gradient rows must add up in both layers
    upstream = tf.constant(rng.normal(size=(BATCH, LENGTH, DIM)).astype(np.float32))

    embedding = keras.layers.Embedding(VOCAB, DIM)
    dense = keras.layers.Dense(DIM, use_bias=False)
    embedding.build((BATCH, LENGTH))
    dense.build((BATCH, LENGTH, VOCAB))
    embedding.embeddings.assign(matrix)
    dense.kernel.assign(matrix)

    with tf.GradientTape(persistent=True) as tape:
        looked_up = embedding(token_ids)
        multiplied = dense(tf.one_hot(token_ids, VOCAB))
        loss_lookup = tf.reduce_sum(looked_up * upstream)
        loss_dense = tf.reduce_sum(multiplied * upstream)
    grad_lookup = tf.convert_to_tensor(tape.gradient(loss_lookup, embedding.embeddings.value))
    grad_dense = tape.gradient(loss_dense, dense.kernel.value)

    np.testing.assert_allclose(looked_up.numpy(), multiplied.numpy(), atol=1e-6)
    np.testing.assert_allclose(grad_lookup.numpy(), grad_dense.numpy(), atol=1e-6)
    unused = np.setdiff1d(np.arange(VOCAB), token_ids)
    assert np.all(grad_dense.numpy()[unused] == 0)  # words not in the batch get no gradient
    assert np.abs(grad_dense.numpy()[5]).sum() > 0
