"""The four embedding setups really freeze, train or mix their channels."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from embcompare.models import classifier as model
from embcompare.training import loop as train

from conftest import load_conf

VOCAB, DIM, CLASSES = 30, 8, 2
SEEN = np.arange(2, 20)  # token ids that occur in training; 20..29 never do
TRAIN_CFG = OmegaConf.create(
    {
        "epochs": 3,
        "batch_size": 8,
        "patience": 5,
        "min_steps": 0,
        "eval_every_steps": 1,
        "progress": False,
        "optimizer": {"name": "adam", "learning_rate": 0.01},
    }
)


def toy_data(seed=0, size=64) -> train.Encoded:
    rng = np.random.default_rng(seed)
    ids = [rng.choice(SEEN, size=rng.integers(3, 9)).astype(np.int32) for _ in range(size)]
    labels = np.array([int(s.sum() % 2) for s in ids])
    return train.Encoded(ids, labels)


def trained(setup_name: str, model_name: str = "cnn", max_norm: float = 3.0):
    setup = load_conf("setup", setup_name)
    matrix = np.random.default_rng(1).normal(0, 0.5, (VOCAB, DIM)).astype(np.float32)
    matrix[0] = 0.0
    matrices = [matrix.copy() for _ in setup.channels]
    trainable = [c.trainable for c in setup.channels]
    cfg_model = OmegaConf.merge(
        load_conf("model", model_name), {"filters": 4, "max_norm": max_norm}
    )
    cfg_model = cfg_model if model_name == "cnn" else load_conf("model", model_name)
    train.seed_everything(0)
    classifier = model.build_model(cfg_model, matrices, trainable, CLASSES)
    train.fit(classifier, toy_data(0), toy_data(1, 32), TRAIN_CFG, seed=0, min_length=5)
    after = [np.asarray(layer.embeddings) for layer in model.embedding_layers(classifier)]
    return classifier, matrix, after


@pytest.mark.parametrize("model_name", ["cnn", "bow"])
def test_static_keeps_the_matrix_bit_identical(model_name):
    classifier, before, (after,) = trained("static", model_name)
    np.testing.assert_array_equal(after, before)
    (layer,) = model.embedding_layers(classifier)
    assert not any(w is layer.embeddings for w in classifier.trainable_weights)
    assert any(w is layer.embeddings for w in classifier.non_trainable_weights)


@pytest.mark.parametrize("setup_name", ["nonstatic", "rand"])
def test_trainable_setups_change_seen_rows_only(setup_name):
    classifier, before, (after,) = trained(setup_name)
    changed = np.any(after != before, axis=1)
    assert changed[SEEN].all()
    assert not changed[20:].any(), "rows never seen in training must get no update"
    np.testing.assert_array_equal(after[0], 0.0)  # padding row stays zero
    (layer,) = model.embedding_layers(classifier)
    assert any(w is layer.embeddings for w in classifier.trainable_weights)


def test_multichannel_has_one_frozen_and_one_trained_matrix():
    classifier, before, (frozen, tuned) = trained("multichannel")
    frozen_layer, tuned_layer = model.embedding_layers(classifier)
    assert [w.path for w in classifier.non_trainable_weights] == [frozen_layer.embeddings.path]
    assert any(w is tuned_layer.embeddings for w in classifier.trainable_weights)
    np.testing.assert_array_equal(frozen, before)
    assert np.any(tuned != before)


def test_cnn_output_weights_respect_max_norm():
    classifier, _, _ = trained("nonstatic", max_norm=0.05)  # tight, so the constraint binds
    kernel = np.asarray(classifier.get_layer("logits").kernel)
    assert np.linalg.norm(kernel, axis=0).max() == pytest.approx(0.05, abs=1e-4)
