"""Score-based metrics per group: ROC AUC and expected calibration error.

AUC depends on a ranking and ECE on binned confidences, so unlike rate
metrics they are computed from the per-sample scores, and resampled by rows.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["binary_auc", "roc_auc", "calibration_bins", "expected_calibration_error"]


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability P(score+ > score-) + P(tie)/2.

    NaN when either class is absent.
    """
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, scores: np.ndarray, *, pos_label: int | None) -> float:
    """Binary AUC of class ``pos_label``, or the macro one-vs-rest AUC over classes.

    The macro average is over the classes for which the AUC is defined (the
    class occurs and does not make up the whole group).
    """
    if pos_label is not None:
        return binary_auc(y_true == pos_label, scores[:, pos_label])
    per_class = [binary_auc(y_true == k, scores[:, k]) for k in range(scores.shape[1])]
    defined = [v for v in per_class if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int):
    """Per-bin count, mean confidence and accuracy on ``n_bins`` equal-width bins of [0, 1].

    Bin edges and assignment follow ``sklearn.calibration.calibration_curve``
    with ``strategy="uniform"``: a confidence equal to an inner edge falls in
    the lower bin. Empty bins have NaN mean confidence and accuracy.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(bin_of, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bin_of, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bin_of, weights=correct.astype(float), minlength=n_bins) / count
    return edges, count, mean_confidence, accuracy


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int) -> float:
    """Binned ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|``; NaN for no samples."""
    if confidence.size == 0:
        return float("nan")
    _, count, mean_confidence, accuracy = calibration_bins(confidence, correct, n_bins=n_bins)
    filled = count > 0
    return float(np.sum(count[filled] / count.sum() * np.abs(accuracy[filled] - mean_confidence[filled])))


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row of ``(B, m)`` labels and scores; NaN where a class is absent."""
    n_pos = labels.sum(1)
    n_neg = labels.shape[1] - n_pos
    ranks = rankdata(scores, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * labels).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def bootstrap_score_metrics(y_true, scores, confidence, correct, *, n_boot, rng, pos_label, n_bins, max_cells=4_000_000):
    """Row-bootstrap replicates of ROC AUC and ECE for one group, vectorised over replicates.

    Returns ``{"roc_auc": (n_boot,), "ece": (n_boot,)}``. Replicates are drawn in
    chunks of at most ``max_cells`` resampled rows to bound memory.
    """
    m = len(y_true)
    out = {"roc_auc": np.full(n_boot, np.nan), "ece": np.full(n_boot, np.nan)}
    if m == 0 or n_boot == 0:
        return out
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    chunk = max(1, max_cells // m)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        rows = rng.integers(0, m, (size, m))
        # ECE: sum_b (n_b / m) |acc_b - conf_b| = sum_b |correct_b - confidence_b| / m with per-bin sums
        flat_bin = np.searchsorted(edges[1:-1], confidence[rows]) + n_bins * np.arange(size)[:, None]
        gap = np.bincount(flat_bin.ravel(), weights=(correct[rows] - confidence[rows]).ravel(), minlength=size * n_bins)
        out["ece"][start:start + size] = np.abs(gap.reshape(size, n_bins)).sum(1) / m
        truth = y_true[rows]
        if pos_label is not None:
            out["roc_auc"][start:start + size] = _auc_rows(truth == pos_label, scores[rows, pos_label])
        else:
            per_class = np.stack([_auc_rows(truth == k, scores[rows, k]) for k in range(scores.shape[1])])
            defined = np.isfinite(per_class)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["roc_auc"][start:start + size] = np.where(
                    defined.any(0), np.where(defined, per_class, 0).sum(0) / defined.sum(0), np.nan
                )
    return out
