"""Training: the loop and the optimizers."""
