"""Models: the classifiers built around Keras Embedding layers."""
