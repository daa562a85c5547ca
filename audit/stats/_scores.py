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


MAX_SCORE_LEVELS = 1024


def score_levels(scores: np.ndarray) -> np.ndarray:
    """Sorted level edges for one score column: its distinct values, or 1,024 quantiles when there are more."""
    distinct = np.unique(scores)
    if distinct.size <= MAX_SCORE_LEVELS:
        return distinct
    return np.unique(np.quantile(scores, np.linspace(0.0, 1.0, MAX_SCORE_LEVELS)))


def _auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC from positives and negatives per score level (last axis, ascending); ties count half."""
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(-1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def bootstrap_score_metrics(y_true, scores, confidence, correct, *, n_boot, rng, pos_label, n_bins, levels):
    """Bootstrap replicates of ROC AUC and ECE for one group, drawn on counts, not rows.

    The group's samples are reduced to counts per (score level, label) for
    AUC and per (calibration bin, correct) for ECE, with each ECE cell's
    mean confidence; a replicate is a multinomial draw of the group's size
    over those cells (the group size is kept). Scores with at most 1,024
    distinct values per class are counted exactly; beyond that, within a
    quantile level ties are counted half. The macro AUC of a multiclass task
    resamples each one-vs-rest histogram on its own. Point estimates are
    always computed from the rows.

    Parameters
    ----------
    levels : list of ndarray
        Level edges per class, from :func:`score_levels` over the whole split.

    Returns
    -------
    dict
        ``{"roc_auc": (n_boot,), "ece": (n_boot,)}``.
    """
    m = len(y_true)
    out = {"roc_auc": np.full(n_boot, np.nan), "ece": np.full(n_boot, np.nan)}
    if m == 0 or n_boot == 0:
        return out
    # ECE: cells (bin, correct) with their mean confidence
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    cell = np.searchsorted(edges[1:-1], confidence) * 2 + correct.astype(np.int64)
    count = np.bincount(cell, minlength=2 * n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(cell, weights=confidence, minlength=2 * n_bins) / np.maximum(count, 1), 0.0)
    draws = rng.multinomial(m, count / m, size=n_boot)  # (B, 2 * n_bins)
    gap = (draws * (np.tile([0.0, 1.0], n_bins) - mean_conf)).reshape(n_boot, n_bins, 2).sum(-1)
    out["ece"] = np.abs(gap).sum(1) / m
    # AUC: counts per (level, label) for each class scored
    classes = [pos_label] if pos_label is not None else list(range(scores.shape[1]))
    per_class = []
    for k in classes:
        level = np.searchsorted(levels[k], scores[:, k])
        k_levels = len(levels[k]) + 1
        hist = np.bincount(level * 2 + (y_true == k), minlength=2 * k_levels)
        resampled = rng.multinomial(m, hist / m, size=n_boot).reshape(n_boot, k_levels, 2)
        per_class.append(_auc_from_counts(resampled[..., 1], resampled[..., 0]))
    per_class = np.array(per_class)
    defined = np.isfinite(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["roc_auc"] = np.where(defined.any(0), np.where(defined, per_class, 0).sum(0) / defined.sum(0), np.nan)
    return out
