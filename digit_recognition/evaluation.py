"""Measuring a classifier: batched predictions, accuracy, confusion counts.

Shared by the training notebook, fine-tuning and the benchmarks, so every
figure they report is computed the same way.
"""
from __future__ import annotations

import numpy as np

from .model import NUM_CLASSES, DigitClassifier

EVAL_BATCH = 1024


def predict_probabilities(classifier: DigitClassifier, x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """(N, 28, 28) images -> (N, classes) probabilities, in batches to bound memory."""
    if len(x) == 0:
        return np.zeros((0, getattr(classifier, "num_classes", NUM_CLASSES)), dtype=np.float32)
    return np.concatenate([classifier.predict_probabilities(x[i:i + batch])
                           for i in range(0, len(x), batch)])


def predict_digits(classifier: DigitClassifier, x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return predict_probabilities(classifier, x, batch).argmax(axis=1)


def accuracy_of(predicted: np.ndarray, y: np.ndarray) -> float:
    """Fraction right; NaN for an empty set (an unknown figure, not a perfect one)."""
    if len(y) == 0:
        return float("nan")
    return float((np.asarray(predicted) == np.asarray(y)).mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = NUM_CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts
