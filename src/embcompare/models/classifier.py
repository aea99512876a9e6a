"""Text classifiers over one or more embedding channels, looked up by name in MODELS."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from embcompare.data.text import PAD_ID
from embcompare.errors import EmbcompareError

# Every model names its sentence representation (the layer right after the embedding stage), so
# reports can plot what the classifier sees.
SENTENCE_LAYER = "sentence"

ModelBuilder = Callable[..., keras.Model]
MODELS: dict[str, ModelBuilder] = {}


def register_model(name: str):
    def decorate(builder: ModelBuilder) -> ModelBuilder:
        MODELS[name] = builder
        return builder

    return decorate


class MaskedEmbedding(layers.Embedding):
    """An Embedding whose padding positions output zeros.

    Multiplying by the mask also makes the padding row's gradient exactly zero, so row 0
    stays zero in trained channels (Kim reset it after every update for the same reason).
    """

    def call(self, inputs):
        mask = ops.cast(ops.not_equal(inputs, PAD_ID), self.compute_dtype)
        # Gather from the variable itself: ResourceGather reads only the looked-up rows, while
        # ops.take reads the whole matrix, which TF copies on every read once it was scattered.
        vectors = ops.cast(tf.gather(self.embeddings.value, inputs), self.compute_dtype)
        return vectors * ops.expand_dims(mask, -1)

    def compute_mask(self, inputs, mask=None):
        return None


def embedding_channels(token_ids, matrices: Sequence[np.ndarray], trainable: Sequence[bool]):
    channels = []
    for number, (matrix, train_it) in enumerate(zip(matrices, trainable, strict=True)):
        layer = MaskedEmbedding(
            *matrix.shape,
            embeddings_initializer=keras.initializers.Constant(matrix),
            trainable=bool(train_it),
            name=f"embedding_{number}",
        )
        channels.append(layer(token_ids))
    return channels


def build_model(cfg_model, matrices, trainable, num_classes: int) -> keras.Model:
    builder = MODELS.get(cfg_model.name)
    if builder is None:
        raise EmbcompareError(
            f"model.name={cfg_model.name!r} is unknown; choose one of {sorted(MODELS)}"
        )
    options = {k: v for k, v in dict(cfg_model).items() if k != "name"}
    return builder(matrices=matrices, trainable=trainable, num_classes=num_classes, **options)


@register_model("cnn")
def build_cnn(
    matrices, trainable, num_classes, windows=(3, 4, 5), filters=100, dropout=0.5, max_norm=3.0
) -> keras.Model:
    """Kim (2014): parallel convolutions, ReLU, max-over-time pooling, dropout, max-norm softmax.

    With several channels each filter slides over every channel and the results are added,
    as in Kim's multichannel model.
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    channels = embedding_channels(token_ids, matrices, trainable)
    pooled = []
    for window in windows:
        conv = layers.Conv1D(filters, int(window), activation=None, name=f"conv_{window}")
        feature_maps = [conv(channel) for channel in channels]
        summed = feature_maps[0] if len(feature_maps) == 1 else layers.Add()(feature_maps)
        activated = layers.Activation("relu")(summed)
        pooled.append(layers.GlobalMaxPooling1D(name=f"max_pool_{window}")(activated))
    features = pooled[0] if len(pooled) == 1 else layers.Concatenate()(pooled)
    features = layers.Identity(name=SENTENCE_LAYER)(features)
    features = layers.Dropout(dropout)(features)
    logits = layers.Dense(
        num_classes, kernel_constraint=keras.constraints.MaxNorm(max_norm), name="logits"
    )(features)
    return keras.Model(token_ids, logits, name="kim_cnn")


class MaskedMean(layers.Layer):
    """Mean of the word vectors of a sentence, padding left out."""

    def call(self, vectors, token_ids):
        mask = ops.cast(ops.not_equal(token_ids, PAD_ID), vectors.dtype)
        total = ops.sum(vectors, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        return total / count


@register_model("bow")
def build_bow(matrices, trainable, num_classes, hidden=100, dropout=0.5) -> keras.Model:
    """Mean of embeddings, a hidden ReLU layer, dropout, softmax.

    The hidden layer matters: a softmax layer straight on a frozen 50-d mean leaves the
    static setup 102 trainable weights (two classes), too few to be a fair comparison.
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    channels = embedding_channels(token_ids, matrices, trainable)
    means = [MaskedMean()(channel, token_ids) for channel in channels]
    features = means[0] if len(means) == 1 else layers.Concatenate()(means)
    features = layers.Identity(name=SENTENCE_LAYER)(features)
    features = layers.Dense(hidden, activation="relu", name="hidden")(features)
    features = layers.Dropout(dropout)(features)
    logits = layers.Dense(num_classes, name="logits")(features)
    return keras.Model(token_ids, logits, name="bag_of_embeddings")


def embedding_layers(model: keras.Model) -> list[MaskedEmbedding]:
    """The model's embedding channels, in channel order."""
    return [layer for layer in model.layers if isinstance(layer, MaskedEmbedding)]


def sentence_features(model: keras.Model, token_ids: np.ndarray) -> np.ndarray:
    """The sentence representation the classifier's last layers see."""
    extractor = keras.Model(model.input, model.get_layer(SENTENCE_LAYER).output)
    return np.asarray(extractor(token_ids, training=False))
