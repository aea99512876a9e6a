"""Row-sparse (lazy) Adam and Adadelta: exact on the rows they touch, silent on the rest, and
Keras's own update on dense variables. Also the config switch and length-bucketed batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from embcompare.errors import EmbcompareError
from embcompare.models import classifier as model
from embcompare.training import loop as train
from embcompare.training import optimizers as optim

from conftest import load_conf

ROWS, DIM = 12, 4
UNTOUCHED = [9, 10, 11]  # no batch below looks these rows up


def sparse_batches(steps=5, seed=0):
    """(indices, values) per step, with repeated rows in every batch, never UNTOUCHED ones."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        indices = rng.choice(9, size=7).astype(np.int32)
        indices[:2] = indices[2]  # the same row three times
        batches.append((indices, rng.normal(size=(7, DIM)).astype(np.float32)))
    return batches


def summed_rows(indices, values):
    rows = np.unique(indices)
    return rows, np.stack([values[indices == r].sum(axis=0) for r in rows]).astype(np.float64)


def lazy_adam_reference(init, batches, learning_rate, beta_1, beta_2, epsilon, amsgrad=False):
    var = init.astype(np.float64)
    m, v, v_hat = np.zeros_like(var), np.zeros_like(var), np.zeros_like(var)
    for step, (indices, values) in enumerate(batches, start=1):
        rows, g = summed_rows(indices, values)
        m[rows] = beta_1 * m[rows] + (1 - beta_1) * g
        v[rows] = beta_2 * v[rows] + (1 - beta_2) * g**2
        v_hat[rows] = np.maximum(v_hat[rows], v[rows])
        denominator = v_hat[rows] if amsgrad else v[rows]
        alpha = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)  # the global step
        var[rows] -= alpha * m[rows] / (np.sqrt(denominator) + epsilon)
    return var


def lazy_adadelta_reference(init, batches, learning_rate, rho, epsilon):
    var = init.astype(np.float64)
    grads, deltas = np.zeros_like(var), np.zeros_like(var)
    for indices, values in batches:
        rows, g = summed_rows(indices, values)
        grads[rows] = rho * grads[rows] + (1 - rho) * g**2
        delta = -np.sqrt(deltas[rows] + epsilon) / np.sqrt(grads[rows] + epsilon) * g
        deltas[rows] = rho * deltas[rows] + (1 - rho) * delta**2
        var[rows] += learning_rate * delta
    return var


def apply_sparse(optimizer, init, batches):
    variable = keras.Variable(init)
    for indices, values in batches:
        gradient = tf.IndexedSlices(tf.constant(values), tf.constant(indices), (ROWS, DIM))
        optimizer.apply([gradient], [variable])
    return np.asarray(variable)


def initial_matrix():
    return np.random.default_rng(1).normal(size=(ROWS, DIM)).astype(np.float32)


ADAM = {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
ADADELTA = {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6}


@pytest.mark.parametrize("amsgrad", [False, True])
def test_sparse_adam_matches_the_lazy_adam_formula(amsgrad):
    init, batches = initial_matrix(), sparse_batches()
    after = apply_sparse(optim.SparseAdam(**ADAM, amsgrad=amsgrad), init, batches)
    expected = lazy_adam_reference(init, batches, **ADAM, amsgrad=amsgrad)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after[UNTOUCHED], init[UNTOUCHED])


def test_sparse_adadelta_matches_the_lazy_adadelta_formula():
    init, batches = initial_matrix(), sparse_batches()
    after = apply_sparse(optim.SparseAdadelta(**ADADELTA), init, batches)
    expected = lazy_adadelta_reference(init, batches, **ADADELTA)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after[UNTOUCHED], init[UNTOUCHED])


PAIRS = [
    (optim.SparseAdam, keras.optimizers.Adam, ADAM),
    (optim.SparseAdadelta, keras.optimizers.Adadelta, ADADELTA),
]


@pytest.mark.parametrize(("sparse_class", "keras_class", "options"), PAIRS)
def test_dense_gradients_get_exactly_keras_update(sparse_class, keras_class, options):
    init = initial_matrix()
    gradients = [
        np.random.default_rng(s).normal(size=init.shape).astype(np.float32) for s in (2, 3)
    ]
    results = []
    for optimizer in (sparse_class(**options), keras_class(**options)):
        variable = keras.Variable(init)
        for gradient in gradients:
            optimizer.apply([tf.constant(gradient)], [variable])
        results.append(np.asarray(variable))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize(("sparse_class", "keras_class", "options"), PAIRS)
def test_rows_touched_every_step_match_the_dense_optimizer(sparse_class, keras_class, options):
    """The lazy update differs from the dense one only on rows that a step leaves out: with
    every row in every step (each once) the two agree bit for bit (Adam), or to float32
    rounding (Adadelta, whose fused kernel multiplies by a reciprocal square root where Keras
    divides)."""
    init = initial_matrix()
    rng = np.random.default_rng(4)
    steps = [rng.normal(size=init.shape).astype(np.float32) for _ in range(4)]
    every_row = np.arange(ROWS, dtype=np.int32)[::-1].copy()  # all rows, in another order
    sparse = apply_sparse(sparse_class(**options), init, [(every_row, g[::-1]) for g in steps])
    variable = keras.Variable(init)
    dense_optimizer = keras_class(**options)
    for gradient in steps:
        dense_optimizer.apply([tf.constant(gradient)], [variable])
    if sparse_class is optim.SparseAdadelta:
        np.testing.assert_allclose(sparse, np.asarray(variable), rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(sparse, np.asarray(variable))


# --- in the real training step -------------------------------------------------------------

VOCAB, CLASSES = 40, 2


def toy_data(seed, size=200) -> train.Encoded:
    """Label: whether the sentence has more tokens from the upper half of the vocabulary."""
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, VOCAB, size=rng.integers(3, 10)).astype(np.int32) for _ in range(size)]
    labels = np.array([int(np.mean(s >= VOCAB // 2) > 0.5) for s in ids])
    return train.Encoded(ids, labels)


def toy_model(model_name="bow", **options):
    matrix = np.random.default_rng(1).normal(0, 0.3, (VOCAB, 8)).astype(np.float32)
    matrix[0] = 0.0
    cfg = OmegaConf.create({"name": model_name, **options})
    train.seed_everything(0)
    return model.build_model(cfg, [matrix], [True], CLASSES)


def mean_loss(classifier, data) -> float:
    x = train.pad(data.ids, 5)
    logits = classifier(x, training=False)
    return float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(data.labels, logits))


def loss_drop(optimizer, epochs=20) -> float:
    classifier, data = toy_model(), toy_data(0)
    before = mean_loss(classifier, data)
    step, rng = train.make_train_step(classifier, optimizer), np.random.default_rng(0)
    for _ in range(epochs):
        train.train_epoch(step, data, 20, 5, rng)
    return before - mean_loss(classifier, data)


@pytest.mark.parametrize(
    ("sparse_class", "keras_class", "learning_rate"),
    [
        (optim.SparseAdam, keras.optimizers.Adam, 0.01),
        (optim.SparseAdadelta, keras.optimizers.Adadelta, 1.0),
    ],
    ids=["adam", "adadelta"],
)
def test_training_loss_falls_as_with_the_dense_optimizer(sparse_class, keras_class, learning_rate):
    sparse_drop = loss_drop(sparse_class(learning_rate=learning_rate))
    dense_drop = loss_drop(keras_class(learning_rate=learning_rate))
    assert dense_drop > 0.3  # of ln 2 = 0.69 at the start
    assert sparse_drop == pytest.approx(dense_drop, rel=0.2)


class GradientKinds(optim.SparseAdam):
    """Records what kind of gradient each variable's update receives."""

    seen: list[str]

    def update_step(self, gradient, variable, learning_rate):
        self.seen.append(type(gradient).__name__)
        return super().update_step(gradient, variable, learning_rate)


@pytest.mark.parametrize("model_name", ["bow", "cnn"])
def test_the_embedding_gradient_reaches_the_optimizer_as_indexed_slices(model_name):
    """If a model change densified it, every step would update the whole matrix again."""
    classifier = toy_model(model_name) if model_name == "bow" else toy_model("cnn", filters=3)
    optimizer = GradientKinds()
    optimizer.seen = []
    step = train.make_train_step(classifier, optimizer)
    x, y = next(train.batches(toy_data(0), 10, 5))
    step(x, y)
    (embedding,) = model.embedding_layers(classifier)
    weights = classifier.trainable_weights
    kinds = optimizer.seen[-len(weights) :]  # the last trace (building the optimizer retraces)
    expected = ["IndexedSlices" if w is embedding.embeddings else "SymbolicTensor" for w in weights]
    assert kinds == expected


def test_max_norm_still_constrains_the_output_layer():
    classifier = toy_model("cnn", filters=3, max_norm=0.05)
    step = train.make_train_step(classifier, optim.SparseAdam(learning_rate=0.1))
    train.train_epoch(step, toy_data(0), 20, 5, np.random.default_rng(0))
    kernel = np.asarray(classifier.get_layer("logits").kernel)
    assert np.linalg.norm(kernel, axis=0).max() <= 0.05 + 1e-6


# --- the config switch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "sparse_class", "keras_class"),
    [
        ("default", optim.SparseAdam, keras.optimizers.Adam),
        ("kim", optim.SparseAdadelta, keras.optimizers.Adadelta),
    ],
)
def test_make_optimizer_follows_the_sparse_switch(preset, sparse_class, keras_class):
    cfg = OmegaConf.merge(load_conf("train", "default"), load_conf("train", preset))
    assert cfg.optimizer.sparse is True
    assert type(train.make_optimizer(cfg.optimizer)) is sparse_class
    cfg.optimizer.sparse = False
    assert type(train.make_optimizer(cfg.optimizer)) is keras_class


def test_sparse_switch_on_an_optimizer_without_a_sparse_variant_names_the_key():
    with pytest.raises(EmbcompareError, match="train.optimizer.sparse=false"):
        train.make_optimizer(OmegaConf.create({"name": "sgd", "sparse": True}))
    assert isinstance(
        train.make_optimizer(OmegaConf.create({"name": "sgd", "sparse": False})),
        keras.optimizers.SGD,
    )


# --- batches -------------------------------------------------------------------------------


def test_unbucketed_batches_are_the_shuffled_order_cut_in_pieces():
    lengths = np.arange(103) % 17
    got = train.batch_indices(lengths, 10, np.random.default_rng(5))
    expected = np.random.default_rng(5).permutation(103)
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert [len(b) for b in got] == [10] * 10 + [3]


def test_bucketed_batches_cover_every_example_once_with_less_padding():
    lengths = np.random.default_rng(0).integers(1, 60, size=1003)
    plain = train.batch_indices(lengths, 50, np.random.default_rng(1))
    bucketed = train.batch_indices(lengths, 50, np.random.default_rng(1), bucket_batches=8)
    assert sorted(np.concatenate(bucketed)) == list(range(1003))
    assert len(bucketed) == len(plain)

    def padded_tokens(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    assert padded_tokens(bucketed) < 0.8 * padded_tokens(plain)
    again = train.batch_indices(lengths, 50, np.random.default_rng(2), bucket_batches=8)
    assert not all(np.array_equal(a, b) for a, b in zip(bucketed, again, strict=True))
