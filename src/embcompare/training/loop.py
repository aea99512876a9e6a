"""The training loop: mini-batches padded to their own longest sentence, early stopping on dev
accuracy after a floor of optimizer steps, and the best dev weights restored at the end."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from embcompare.data.text import PAD_ID
from embcompare.errors import EmbcompareError
from embcompare.training.optimizers import SPARSE_OPTIMIZERS

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Token-id sequences with their labels."""

    ids: Sequence[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class TrainingObserver(Protocol):
    """Watches training without changing it (a run logger): the loss of every optimizer step,
    reported after its epoch, and each dev check as its history row."""

    def log_step(self, step: int, epoch: int, loss: float) -> None: ...

    def log_check(self, check: dict) -> None: ...


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow
    tf.config.experimental.enable_op_determinism()


def make_optimizer(cfg_optimizer) -> keras.optimizers.Optimizer:
    """Keras's optimizer of that name; with `sparse: true` (the default) its row-sparse variant
    from embcompare.training.optimizers, which updates only the embedding rows a batch looks up."""
    settings = dict(cfg_optimizer)
    name, sparse = str(settings.pop("name")), bool(settings.pop("sparse", True))
    try:
        if sparse:
            return _sparse_optimizer_class(name)(**settings)
        return keras.optimizers.get({"class_name": name, "config": settings})
    except (ValueError, TypeError) as error:
        raise EmbcompareError(
            f"train.optimizer={dict(cfg_optimizer)} is not usable: {error}"
        ) from None


def _sparse_optimizer_class(name: str) -> type[keras.optimizers.Optimizer]:
    chosen = SPARSE_OPTIMIZERS.get(name.lower())
    if chosen is None:
        raise EmbcompareError(
            f"train.optimizer.name={name!r} has no row-sparse variant; choose one of "
            f"{sorted(SPARSE_OPTIMIZERS)} or set train.optimizer.sparse=false"
        )
    return chosen


def pad(sequences: Sequence[np.ndarray], min_length: int) -> np.ndarray:
    """Pad to the longest sequence here (not the dataset's longest), but at least `min_length`."""
    length = max(min_length, max((len(s) for s in sequences), default=0))
    batch = np.full((len(sequences), length), PAD_ID, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    return batch


def batch_indices(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    bucket_batches: int = 0,
) -> list[np.ndarray]:
    """The example indices of each batch of one epoch: in order without `rng`, else shuffled.

    With `bucket_batches` k > 1 the shuffled examples are cut into chunks of k batches, each
    chunk is sorted by length before it is cut into batches, and the batches are shuffled.
    Batch-mates then have similar lengths, so less padding is computed, while which examples
    share a chunk, and the order of the batches, stay random.
    """
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    if rng is None or bucket_batches <= 1:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    chunk_size = batch_size * bucket_batches
    chosen: list[np.ndarray] = []
    for start in range(0, len(order), chunk_size):
        chunk = order[start : start + chunk_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]  # ties keep the shuffled order
        chosen.extend(chunk[at : at + batch_size] for at in range(0, len(chunk), batch_size))
    return [chosen[i] for i in rng.permutation(len(chosen))]


def batches(
    data: Encoded,
    batch_size: int,
    min_length: int,
    rng: np.random.Generator | None = None,
    bucket_batches: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    lengths = np.fromiter((len(s) for s in data.ids), dtype=np.int64, count=len(data))
    for chosen in batch_indices(lengths, batch_size, rng, bucket_batches):
        yield pad([data.ids[i] for i in chosen], min_length), data.labels[chosen].astype(np.int64)


def predict(model: keras.Model, data: Encoded, batch_size: int, min_length: int) -> np.ndarray:
    step = _predict_step(model)
    predictions = [step(x).numpy() for x, _ in batches(data, batch_size, min_length)]
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def _predict_step(model: keras.Model):
    if not hasattr(model, "_embcompare_predict"):
        model._embcompare_predict = tf.function(
            lambda x: tf.argmax(model(x, training=False), axis=-1),
            input_signature=BATCH_SIGNATURE[:1],
        )
    return model._embcompare_predict


def accuracy(model: keras.Model, data: Encoded, batch_size: int, min_length: int) -> float:
    return float(np.mean(predict(model, data, batch_size, min_length) == data.labels))


# (token ids: batch x length, labels: batch); batches() yields these dtypes
BATCH_SIGNATURE = [
    tf.TensorSpec(shape=(None, None), dtype=tf.int32),
    tf.TensorSpec(shape=(None,), dtype=tf.int64),
]


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer):
    """One optimizer step on a batch, traced once for all batch sizes and lengths.

    The signature is fixed, since `reduce_retracing` alone still traced two or three times
    (about 1.5 s each). The optimizer's slots are built before tracing: a step that creates
    variables is traced twice by tf.function (~0.45 s a run). The concrete function is called
    directly, which skips matching each call's arguments to the signature (~0.5 ms a step).

    `optimizer.apply` receives the embedding's gradient as the tf.IndexedSlices the lookup
    produced, so a sparse optimizer can update just the looked-up rows. XLA (jit_compile) is
    left off: on CPU it made the Kim CNN's step ~3x slower and it cannot compile tf.unique.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer.build(model.trainable_weights)

    @tf.function(input_signature=BATCH_SIGNATURE)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(gradients, model.trainable_weights)
        return loss

    return train_step.get_concrete_function()


def train_epoch(
    train_step,
    data: Encoded,
    batch_size: int,
    min_length: int,
    rng: np.random.Generator,
    bucket_batches: int = 0,
) -> list[float]:
    """One pass over shuffled batches; the loss of each step."""
    return [
        float(train_step(x, y))
        for x, y in batches(data, batch_size, min_length, rng, bucket_batches)
    ]


def fit(
    model: keras.Model,
    train: Encoded,
    dev: Encoded,
    cfg_train,
    seed: int,
    min_length: int,
    observer: TrainingObserver | None = None,
) -> list[dict]:
    """Train, keep the weights of the best dev check, return one history row per check; an
    `observer` sees every step's loss and every check."""
    train_step = make_train_step(model, make_optimizer(cfg_train.optimizer))
    batch_size, min_steps = int(cfg_train.batch_size), int(cfg_train.min_steps)
    bucket_batches = int(cfg_train.get("bucket_batches", 0))
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
        epoch_losses = train_epoch(train_step, train, batch_size, min_length, rng, bucket_batches)
        if observer is not None:
            for step, loss in enumerate(epoch_losses, start=steps + 1):
                observer.log_step(step, epoch, loss)
        losses += epoch_losses
        steps += len(epoch_losses)
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
        if observer is not None:
            observer.log_check(dict(history[-1]))
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
