"""Classification metrics from confusion counts.

The sufficient statistic of a classification sample is its confusion cell
``(true class, predicted class or abstention)``. A group's statistics are a
``(C, C + 1)`` count matrix whose last column counts abstentions (Gender
Shades' "NA": no prediction was made). Every function here is vectorised over
any leading axes, so the same code evaluates one group, all groups, or a
thousand bootstrap resamples of all groups.

Rate metrics are returned as ``(numerator, denominator)`` pairs so that
intervals for proportions and the significance tests see the counts.
"""

from __future__ import annotations

import numpy as np

from ..errors import StatsInputError

__all__ = ["RATE_METRICS", "CLASS_METRICS", "confusion_cells", "rate_components", "ratio"]

# Metrics that do not depend on a class.
OVERALL_METRICS = ("accuracy", "error_rate", "abstention_rate", "overall_error")
# One-vs-rest metrics, one per class (and a macro average over classes).
CLASS_METRICS = ("tpr", "fnr", "fpr", "tnr", "ppv", "fdr", "npv", "selection_rate")
RATE_METRICS = OVERALL_METRICS + CLASS_METRICS

DESCRIPTIONS = {
    "accuracy": "correct / processed (abstentions excluded), Gender Shades' TRUE/(N-NA)",
    "error_rate": "misclassified / processed: 1 - accuracy, the within-group error",
    "abstention_rate": "abstentions / all samples (NA/N)",
    "overall_error": "(abstentions + misclassified) / all samples, Gender Shades' (NA+FALSE)/N",
    "tpr": "true positive rate (recall): TP / (TP + FN)",
    "fnr": "false negative rate: FN / (TP + FN)",
    "fpr": "false positive rate: FP / (FP + TN)",
    "tnr": "true negative rate: TN / (FP + TN)",
    "ppv": "positive predictive value (precision): TP / (TP + FP)",
    "fdr": "false discovery rate, 1 - PPV: FP / (TP + FP)",
    "npv": "negative predictive value: TN / (TN + FN)",
    "selection_rate": "predicted positive / processed",
}


def confusion_cells(y_true: np.ndarray, y_pred: np.ndarray, *, n_classes: int) -> np.ndarray:
    """Encode each sample's confusion cell as ``true * (C + 1) + pred``.

    ``y_pred == -1`` (abstention) maps to the column ``C``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise StatsInputError(
            f"expected y_true and y_pred to be 1-d and of equal length, found shapes {y_true.shape} and {y_pred.shape}"
        )
    for name, values, low in (("y_true", y_true, 0), ("y_pred", y_pred, -1)):
        if not np.issubdtype(values.dtype, np.integer):
            raise StatsInputError(f"expected {name} to hold integer class indices, found dtype {values.dtype}")
        bad = (values < low) | (values >= n_classes)
        if bad.any():
            raise StatsInputError(
                f"expected {name} in [{low}, {n_classes - 1}], found {values[bad][0]} at position {int(np.argmax(bad))}"
            )
    pred = np.where(y_pred < 0, n_classes, y_pred)
    return y_true.astype(np.int64) * (n_classes + 1) + pred.astype(np.int64)


def ratio(numerator, denominator):
    """``numerator / denominator`` with NaN (not 0, not inf) where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def rate_components(confusion: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Numerators and denominators of every rate metric.

    Parameters
    ----------
    confusion : ndarray of shape (..., C, C + 1)
        Counts by true class (rows) and predicted class (columns), last column
        abstentions.

    Returns
    -------
    dict
        ``name -> (numerator, denominator)``. Overall metrics have shape ``(...)``;
        class metrics have shape ``(..., C)``, one-vs-rest over processed samples.
    """
    confusion = np.asarray(confusion, dtype=float)
    n_classes = confusion.shape[-2]
    processed = confusion[..., :, :n_classes]
    abstained = confusion[..., :, n_classes].sum(-1)
    n = confusion.sum((-2, -1))
    n_processed = n - abstained
    tp = np.diagonal(processed, axis1=-2, axis2=-1)
    correct = tp.sum(-1)
    positives = processed.sum(-1)
    predicted = processed.sum(-2)
    fn = positives - tp
    fp = predicted - tp
    negatives = n_processed[..., None] - positives
    tn = negatives - fp
    wrong = n_processed - correct
    return {
        "accuracy": (correct, n_processed),
        "error_rate": (wrong, n_processed),
        "abstention_rate": (abstained, n),
        "overall_error": (abstained + wrong, n),
        "tpr": (tp, positives),
        "fnr": (fn, positives),
        "fpr": (fp, negatives),
        "tnr": (tn, negatives),
        "ppv": (tp, predicted),
        "fdr": (fp, predicted),
        "npv": (tn, tn + fn),
        "selection_rate": (predicted, np.broadcast_to(n_processed[..., None], predicted.shape)),
    }


def macro(values: np.ndarray) -> np.ndarray:
    """Mean over the class axis (last) of the classes where the metric is defined."""
    values = np.asarray(values, dtype=float)
    defined = ~np.isnan(values)
    total = np.where(defined, values, 0.0).sum(-1)
    return ratio(total, defined.sum(-1))


def check_counts(confusion: np.ndarray) -> None:
    if np.any(np.asarray(confusion) < 0):
        raise StatsInputError("expected non-negative confusion counts, found a negative count")
