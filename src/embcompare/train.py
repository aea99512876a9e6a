"""The training loop: mini-batches padded to their own longest sentence, early stopping on dev
accuracy after a floor of optimizer steps, and the best dev weights restored at the end."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from embcompare.errors import EmbcompareError
from embcompare.text import PAD_ID

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Token-id sequences with their labels."""

    ids: Sequence[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow
    tf.config.experimental.enable_op_determinism()


def make_optimizer(cfg_optimizer) -> keras.optimizers.Optimizer:
    options = {k: v for k, v in dict(cfg_optimizer).items() if k != "name"}
    try:
        return keras.optimizers.get({"class_name": cfg_optimizer.name, "config": options})
    except (ValueError, TypeError) as error:
        raise EmbcompareError(
            f"train.optimizer={dict(cfg_optimizer)} is not usable: {error}"
        ) from None


def pad(sequences: Sequence[np.ndarray], min_length: int) -> np.ndarray:
    """Pad to the longest sequence here (not the dataset's longest), but at least `min_length`."""
    length = max(min_length, max((len(s) for s in sequences), default=0))
    batch = np.full((len(sequences), length), PAD_ID, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    return batch


def batches(
    data: Encoded, batch_size: int, min_length: int, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    order = rng.permutation(len(data)) if rng is not None else np.arange(len(data))
    for start in range(0, len(data), batch_size):
        chosen = order[start : start + batch_size]
        yield pad([data.ids[i] for i in chosen], min_length), data.labels[chosen]


def predict(model: keras.Model, data: Encoded, batch_size: int, min_length: int) -> np.ndarray:
    step = _predict_step(model)
    predictions = [step(x).numpy() for x, _ in batches(data, batch_size, min_length)]
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def _predict_step(model: keras.Model):
    if not hasattr(model, "_embcompare_predict"):
        model._embcompare_predict = tf.function(
            lambda x: tf.argmax(model(x, training=False), axis=-1), reduce_retracing=True
        )
    return model._embcompare_predict


def accuracy(model: keras.Model, data: Encoded, batch_size: int, min_length: int) -> float:
    return float(np.mean(predict(model, data, batch_size, min_length) == data.labels))


def fit(
    model: keras.Model, train: Encoded, dev: Encoded, cfg_train, seed: int, min_length: int
) -> list[dict]:
    """Train, keep the weights of the best dev check, return one history row per check."""
    optimizer = make_optimizer(cfg_train.optimizer)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(gradients, model.trainable_weights)
        return loss

    batch_size, min_steps = int(cfg_train.batch_size), int(cfg_train.min_steps)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    # Small samples have epochs of one or two steps: train at least min_steps steps, and
    # check dev accuracy about every eval_every_steps steps rather than after each tiny epoch.
    max_epochs = max(int(cfg_train.epochs), math.ceil(min_steps / steps_per_epoch))
    eval_every = max(1, round(int(cfg_train.eval_every_steps) / steps_per_epoch))
    rng = np.random.default_rng(seed)
    best_accuracy, best_weights, stale, steps = -1.0, model.get_weights(), 0, 0
    history: list[dict] = []
    started, losses = time.perf_counter(), []
    epochs = tqdm(range(1, max_epochs + 1), desc="epochs", disable=not cfg_train.progress)
    for epoch in epochs:
        for x, y in batches(train, batch_size, min_length, rng):
            losses.append(float(train_step(x, y)))
            steps += 1
        if epoch % eval_every and epoch != max_epochs:
            continue
        dev_accuracy = accuracy(model, dev, 500, min_length)
        history.append(
            {
                "epoch": epoch,
                "steps": steps,
                "train_loss": float(np.mean(losses)),
                "dev_accuracy": dev_accuracy,
                "seconds": time.perf_counter() - started,
            }
        )
        started, losses = time.perf_counter(), []
        epochs.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", dev=f"{dev_accuracy:.3f}")
        if dev_accuracy > best_accuracy:
            best_accuracy, best_weights, stale = dev_accuracy, model.get_weights(), 0
        else:
            stale += 1
        if steps >= min_steps and stale >= int(cfg_train.patience):
            log.info("early stop after epoch %d: no dev gain in %d checks", epoch, stale)
            break
    model.set_weights(best_weights)
    return history
