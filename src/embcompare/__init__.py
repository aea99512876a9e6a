"""embcompare: how task-trained Keras embeddings compare with pretrained word vectors."""

__version__ = "0.1.0"
