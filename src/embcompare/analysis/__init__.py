"""Analysis: task scores, word-vector semantics, claims and aggregation of runs."""
