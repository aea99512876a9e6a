"""Word vectors: load pretrained ones, or pretrain word2vec on a corpus."""
