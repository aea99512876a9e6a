"""Task scores of a trained classifier, and the per-epoch history file."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
from sklearn.metrics import accuracy_score, f1_score

from embcompare.train import Encoded, predict


def task_scores(model: keras.Model, test: Encoded, min_length: int) -> dict[str, float]:
    predicted = predict(model, test, 500, min_length)
    return {
        "test_accuracy": float(accuracy_score(test.labels, predicted)),
        "test_macro_f1": float(f1_score(test.labels, predicted, average="macro")),
    }


def write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
