"""fastText's skip-gram as Keras Embeddings: a word's input vector is the mean of the rows of
the word and of its hashed character n-grams; the batches are word2vec's (objectives.py).

As in gensim's FastText and fastText's C++ code:
  - the input table holds one row per word and `bucket` rows for n-grams, which share a row
    when their FNV-1a hashes collide (embcompare.vectors.subwords); all start as
    U(-1/dim, 1/dim), the output rows at zero;
  - the forward pass averages the word's rows, the backward pass gives each of them the full
    error of that mean (not a share of it), as word2vec's CBOW does with its context words.
One difference: gensim's skip-gram step divides the sum by the number of n-grams alone,
leaving out the word's own row, while its finished vectors (and fastText) divide by all rows;
here training uses the mean over all rows, so the vector trained is the vector saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from embcompare.vectors.pretraining.corpus import PAD_ID, EncodedCorpus
from embcompare.vectors.pretraining.objectives import Batch
from embcompare.vectors.pretraining.settings import Settings
from embcompare.vectors.subwords import ngram_buckets


@dataclass
class SubwordTable:
    """Each corpus row's rows of the input table, flattened: row r's are
    `ids[offsets[r]:offsets[r + 1]]`, its own first. Rows 0..len(words) of the input table are
    padding and the words (as in EncodedCorpus), n-gram bucket b is row len(words) + 1 + b."""

    offsets: np.ndarray
    ids: np.ndarray
    bucket: int

    @property
    def word_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def input_rows(self) -> int:
        return self.word_rows + self.bucket

    def flat_inputs(self, rows: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
        """(input-table ids, number of the row each belongs to) for the given corpus rows,
        padded to a multiple of `multiple` with padding ids owned by a spare number, len(rows):
        a compiled step then sees few distinct shapes."""
        starts, lengths = self.offsets[rows], np.diff(self.offsets)[rows]
        owners = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        first_of_owner = np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids = self.ids[np.repeat(starts, lengths) + np.arange(len(owners)) - first_of_owner]
        padding = -len(ids) % multiple
        ids = np.concatenate([ids, np.full(padding, PAD_ID, np.int32)])
        owners = np.concatenate([owners, np.full(padding, len(rows), np.int32)])
        return ids, owners


def subword_table(words: list[str], min_n: int, max_n: int, bucket: int) -> SubwordTable:
    """The table of corpus rows (padding, then `words`) and their input-table rows; padding
    has only its own row."""
    first_ngram_row = len(words) + 1
    per_row = [np.array([PAD_ID], np.int32)]
    for row, word in enumerate(words, start=1):
        ngrams = np.array(ngram_buckets(word, min_n, max_n, bucket), np.int64) + first_ngram_row
        per_row.append(np.concatenate([[row], ngrams]).astype(np.int32))
    offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in per_row])])
    return SubwordTable(offsets=offsets, ids=np.concatenate(per_row), bucket=bucket)


def with_subword_inputs(
    batches: Iterator[tuple[Batch, float]], table: SubwordTable
) -> Iterator[tuple[Batch, float]]:
    """Skip-gram batches whose targets become (input-table ids, their target number, each
    example's target number). A target repeated in a batch is averaged once: the error of
    each of its examples still reaches all its rows, so the step is the same, only cheaper."""
    for batch, done in batches:
        targets, target_of_example = np.unique(batch.inputs, return_inverse=True)
        ids, owners = table.flat_inputs(targets, multiple=len(batch.candidates))
        inputs = (ids, owners, target_of_example.astype(np.int32))
        yield Batch(inputs, batch.candidates, batch.weights), done


def build_fasttext_model(table: SubwordTable, dim: int, seed: int):
    """A Keras model mapping ((input ids, their target number, each example's target number),
    candidates) to one logit per candidate: the dot product of the candidate's output row with
    the mean of the example's target's input rows."""
    import keras
    from keras import ops

    class FastTextModel(keras.Model):
        def __init__(self):
            super().__init__()
            initializer = keras.initializers.RandomUniform(-1.0 / dim, 1.0 / dim, seed=seed)
            self.input_vectors = keras.layers.Embedding(
                table.input_rows, dim, embeddings_initializer=initializer, name="input_vectors"
            )
            self.output_vectors = keras.layers.Embedding(
                table.word_rows, dim, embeddings_initializer="zeros", name="output_vectors"
            )

        def call(self, inputs):
            (ids, owners, target_of_example), candidates = inputs
            targets = self._mean_of_rows(ids, owners, candidates.shape[0])
            hidden = ops.take(targets, target_of_example, axis=0)
            outputs = self.output_vectors(candidates)  # batch x (1 + negative) x dim
            return ops.squeeze(ops.matmul(outputs, ops.expand_dims(hidden, -1)), -1)

        def _mean_of_rows(self, ids, owners, batch):
            # at most `batch` targets; one spare segment collects the padding ids, and is dropped
            total = ops.segment_sum(self.input_vectors(ids), owners, num_segments=batch + 1)
            ones = ops.ones_like(owners, dtype="float32")
            count = ops.segment_sum(ones, owners, num_segments=batch + 1)[:batch, None]
            total = total[:batch]
            mean = total / ops.maximum(count, 1.0)
            # forward: the mean; backward: every row gets the full error, as in fastText
            return ops.stop_gradient(mean - total) + total

    model = FastTextModel()
    no_example = np.zeros(1, np.int32)
    model(((no_example, no_example, no_example), np.zeros((1, 2), np.int32)))
    return model


def word_vectors(model, table: SubwordTable) -> np.ndarray:
    """Each word's vector: the mean of its own row and its n-grams' rows (padding left out)."""
    rows = np.asarray(model.input_vectors.embeddings)
    offsets, ids = table.offsets, table.ids
    return np.stack(
        [rows[ids[offsets[r] : offsets[r + 1]]].mean(axis=0) for r in range(1, table.word_rows)]
    )


def to_gensim_fasttext(model, corpus: EncodedCorpus, table: SubwordTable, settings: Settings):
    """A gensim FastText holding the Keras tables, to be saved in Facebook's .bin format: then
    gensim (and `format: fasttext_bin`) builds unseen words' vectors from the Keras n-grams."""
    from gensim.models import FastText

    ours = FastText(
        **settings.gensim_arguments(), **settings.subword_arguments(), epochs=settings.epochs
    )
    ours.build_vocab_from_freq(dict(zip(corpus.words, corpus.counts.tolist(), strict=True)))
    input_rows = np.asarray(model.input_vectors.embeddings)
    row_of = {word: row for row, word in enumerate(corpus.words, start=1)}
    order = np.array([row_of[word] for word in ours.wv.index_to_key])  # gensim's word order
    ours.wv.vectors_vocab = input_rows[order]
    ours.wv.vectors_ngrams = input_rows[table.word_rows :]
    ours.syn1neg = np.asarray(model.output_vectors.embeddings)[order]
    ours.wv.adjust_vectors()  # whole-word vectors: the mean of each word's rows
    return ours
