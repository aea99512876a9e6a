"""Word2vec pretraining: settings and cache, corpus, objectives (the Keras model), engines,
and the `embcompare pretrain` command."""
