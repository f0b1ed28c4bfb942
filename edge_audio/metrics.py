"""Classification metrics computed from predictions: accuracy, macro-F1, per-class accuracy, confusion matrix.

Used for every evaluated model, PyTorch or ONNX Runtime, FP32 or INT8, so all numbers are computed one way, and
each carries its evaluation (:func:`edge_audio.stats.evaluation`: n, correct, 95% interval, the predictions).
"""
from __future__ import annotations

import numpy as np

from .stats import evaluation


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    """Metrics of predicted class ids against true ones; accuracies in percent.

    Returns the :func:`~edge_audio.stats.evaluation` (``n``, ``correct``, ``accuracy``, ``ci95``, ``labels``,
    ``predictions``), ``macro_f1`` (mean F1 over the classes present in ``y_true``), ``per_class_accuracy`` (list;
    None for a class absent from ``y_true``) and ``confusion`` (rows: true, columns: predicted).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and equal length, got {y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("no samples to evaluate")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    hits = np.diag(confusion)
    present = support > 0
    precision = np.divide(hits, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(num_classes), where=present)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                   where=(precision + recall) > 0)
    return {
        **evaluation(y_true, y_pred),
        "macro_f1": round(100.0 * float(f1[present].mean()), 4),
        "per_class_accuracy": [round(100.0 * float(r), 4) if p else None for r, p in zip(recall, present)],
        "confusion": confusion.tolist(),
    }
