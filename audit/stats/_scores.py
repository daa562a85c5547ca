"""Score-based metrics per group: ROC AUC and expected calibration error.

AUC depends on a ranking and ECE on binned confidences, so unlike rate
metrics they are computed from the per-sample scores. The engine lays the
samples out once (:func:`score_columns`); every grouping then costs a few
``bincount`` passes for its point values (:func:`group_scores`) and its
bootstrap histograms (:func:`bootstrap_group_scores`), with no loop over rows.
Only the random draws (and the arithmetic on each group's ``(B, cells)``
draws) go group by group: they are most of the cost, about 0.1 microsecond
per resample, group and cell (ECE cells, then ~2,050 (score level, label)
cells per class scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "binary_auc",
    "roc_auc",
    "calibration_bins",
    "expected_calibration_error",
    "ScoreColumns",
    "score_columns",
    "group_scores",
    "bootstrap_group_scores",
]


def _group_auc(score: np.ndarray, truth: np.ndarray, order: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Exact Mann-Whitney AUC of every group in one pass: ``P(score+ > score-) + P(tie) / 2``.

    ``order`` sorts ``score`` ascending; a stable sort of the group codes in
    that order gives every group's samples by score without sorting scores
    again. Within a group, each run of equal scores (a tie) counts its
    negatives half for the positives of the same run, as
    ``sklearn.metrics.roc_auc_score`` does. NaN where a group lacks either class.
    """
    n_pos = np.bincount(codes, weights=truth, minlength=n_groups)
    n_neg = np.bincount(codes, minlength=n_groups) - n_pos
    if codes.size == 0:
        return np.full(n_groups, np.nan)
    small = codes.astype(np.int16) if n_groups <= np.iinfo(np.int16).max else codes
    by = order[np.argsort(small[order], kind="stable")]  # by group, then by score (radix sort for int16)
    group, value, positive = codes[by], score[by], truth[by]
    starts = np.empty(by.size, dtype=bool)
    starts[0] = True
    np.not_equal(group[1:], group[:-1], out=starts[1:])
    starts[1:] |= value[1:] != value[:-1]
    run = np.cumsum(starts) - 1
    run_pos = np.bincount(run, weights=positive)
    run_neg = np.bincount(run) - run_pos
    run_group = group[starts]
    # negatives below a run within its group: all negatives before it, less those of the earlier groups
    below = np.cumsum(run_neg) - run_neg - (np.cumsum(n_neg) - n_neg)[run_group]
    u = np.bincount(run_group, weights=run_pos * (below + 0.5 * run_neg), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability P(score+ > score-) + P(tie)/2.

    NaN when either class is absent.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(scores, kind="stable")
    return float(_group_auc(scores, labels, order, np.zeros(labels.size, dtype=np.int64), 1)[0])


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
    count, mean_confidence, accuracy = _group_bins(bin_of, confidence, correct, np.zeros(bin_of.size, dtype=np.int64),
                                                   n_groups=1, n_bins=n_bins)
    return edges, count[0], mean_confidence[0], accuracy[0]


def _group_bins(bin_of, confidence, correct, codes, *, n_groups: int, n_bins: int):
    """Count, mean confidence and accuracy per (group, bin), each ``(n_groups, n_bins)``; NaN for an empty bin."""
    flat = codes * n_bins + bin_of
    size = n_groups * n_bins
    count = np.bincount(flat, minlength=size).reshape(n_groups, n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(flat, weights=confidence, minlength=size).reshape(n_groups, n_bins) / count
        accuracy = np.bincount(flat, weights=correct.astype(float), minlength=size).reshape(n_groups, n_bins) / count
    return count, mean_confidence, accuracy


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
    """AUC from positives and negatives per score level (last axis, ascending); ties count half.

    ``U = sum_l pos_l (below_l + neg_l / 2)``, computed as ``sum_l pos_l (2 below_l + neg_l) / 2``: exact in
    integers for count inputs, so equal to the float sum of halves it replaces.
    """
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)
    twice_below = np.cumsum(neg, axis=-1)
    twice_below *= 2
    twice_below -= neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.einsum("...l,...l->...", pos, twice_below) * 0.5 / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


@dataclass(frozen=True)
class ScoreColumns:
    """Per-sample score statistics laid out once, for every grouping of an audit.

    Built by :func:`score_columns`; holds only samples with a prediction.

    Attributes
    ----------
    classes : tuple of int
        The classes whose AUC is computed: ``(pos_label,)``, or every class
        for the macro one-vs-rest AUC.
    truth : ndarray of bool, shape (n_scored, m)
        Whether each sample's true class is the scored class.
    scores : ndarray of shape (n_scored, m)
        Each scored class's score.
    order : ndarray of shape (n_scored, m)
        The samples by ascending score, per scored class (a stable sort).
    level : ndarray of int, shape (n_scored, m)
        Each sample's score level (index into the class's level edges) for the
        count-based bootstrap.
    n_levels : tuple of int
        Number of level indices per scored class (edges + 1).
    confidence : ndarray of shape (m,)
        Top-class score.
    correct : ndarray of bool, shape (m,)
        Whether the prediction is right.
    calibration_bin : ndarray of int, shape (m,)
        Reliability bin of the confidence (``calibration_curve``'s uniform bins).
    n_bins : int
        Reliability bins.
    """

    classes: tuple[int, ...]
    truth: np.ndarray
    scores: np.ndarray
    order: np.ndarray
    level: np.ndarray
    n_levels: tuple[int, ...]
    confidence: np.ndarray
    correct: np.ndarray
    calibration_bin: np.ndarray
    n_bins: int

    @property
    def size(self) -> int:
        """Number of samples."""
        return int(self.confidence.size)


def score_columns(*, y_true, scores, confidence, correct, pos_label: int | None, n_bins: int,
                  levels=None) -> ScoreColumns:
    """Lay out samples with a prediction once for :func:`group_scores` and :func:`bootstrap_group_scores`.

    Parameters
    ----------
    y_true : array-like of int, shape (m,)
        True class index.
    scores : array-like of shape (m, C)
        Class scores (finite).
    confidence : array-like of shape (m,)
        Top-class score, binned for ECE.
    correct : array-like of bool, shape (m,)
        Whether the prediction is right.
    pos_label : int or None
        The class of a binary task's AUC; ``None`` scores every class (macro
        one-vs-rest).
    n_bins : int
        Reliability bins (equal width on [0, 1]).
    levels : list of ndarray, optional
        Score level edges per class (index ``k`` for class ``k``), from
        :func:`score_levels`. Default: computed on these samples.

    Returns
    -------
    ScoreColumns
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    classes = (int(pos_label),) if pos_label is not None else tuple(range(scores.shape[1]))
    picked = np.ascontiguousarray(scores.reshape(confidence.size, -1)[:, list(classes)].T)
    order = np.argsort(picked, axis=1, kind="stable")
    edges_of = [score_levels(picked[j, order[j]]) if levels is None else np.asarray(levels[k])
                for j, k in enumerate(classes)]
    n_levels = tuple(len(e) + 1 for e in edges_of)
    level = np.array([np.searchsorted(e, picked[j]) for j, e in enumerate(edges_of)], dtype=np.int32)
    level = level.reshape(len(classes), confidence.size)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return ScoreColumns(
        classes=classes,
        truth=np.array([y_true == k for k in classes], dtype=bool).reshape(len(classes), confidence.size),
        scores=picked,
        order=order,
        level=level,
        n_levels=n_levels,
        confidence=confidence,
        correct=np.asarray(correct, dtype=bool),
        calibration_bin=np.searchsorted(edges[1:-1], confidence),
        n_bins=int(n_bins),
    )


def group_scores(columns: ScoreColumns, *, codes, n_groups: int) -> dict[str, np.ndarray]:
    """AUC, ECE and reliability bins of every group, from one pass over the samples.

    Parameters
    ----------
    columns : ScoreColumns
    codes : array-like of int, shape (m,)
        Group of each sample, ``0 .. n_groups - 1``.
    n_groups : int

    Returns
    -------
    dict
        ``n`` (G,) samples; ``roc_auc`` (G,), exact with ties counted half,
        macro over the classes where it is defined when several classes are
        scored; ``ece`` (G,); ``bin_count``, ``bin_confidence`` and
        ``bin_accuracy`` (G, n_bins), NaN for an empty bin; ``bin_edges``
        (n_bins + 1,). NaN AUC and ECE for an empty group.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n_bins = columns.n_bins
    n = np.bincount(codes, minlength=n_groups)
    per_class = np.array([_group_auc(columns.scores[j], columns.truth[j], columns.order[j], codes, n_groups)
                          for j in range(len(columns.classes))]).reshape(len(columns.classes), n_groups)
    defined = np.isfinite(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(defined.any(0), np.where(defined, per_class, 0.0).sum(0) / defined.sum(0), np.nan)
    count, mean_confidence, accuracy = _group_bins(columns.calibration_bin, columns.confidence, columns.correct, codes,
                                                   n_groups=n_groups, n_bins=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(count > 0, count / n[:, None] * np.abs(accuracy - mean_confidence), 0.0)
    ece = np.where(n > 0, gap.sum(1), np.nan)
    return {"n": n, "roc_auc": auc, "ece": ece, "bin_count": count, "bin_confidence": mean_confidence,
            "bin_accuracy": accuracy, "bin_edges": np.linspace(0.0, 1.0, n_bins + 1)}


def bootstrap_group_scores(columns: ScoreColumns, *, codes, n_groups: int, n_boot: int,
                           rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bootstrap replicates of ROC AUC and ECE for every group, drawn on counts, not rows.

    Each group's samples are reduced to counts per (score level, label) for
    AUC and per (calibration bin, correct) for ECE, with each ECE cell's mean
    confidence; a replicate is a multinomial draw of the group's size over
    those cells (the group size is kept). Scores with at most 1,024 distinct
    values per class are counted exactly; beyond that, within a quantile level
    ties are counted half. The macro AUC of a multiclass task resamples each
    one-vs-rest histogram on its own. Every histogram of every group comes
    from one ``bincount`` over group x cell; only the draws (and the
    arithmetic on a group's ``(n_boot, cells)`` draws) go group by group, in
    the order ECE, then AUC class by class, for group 0, 1, ...: the order of
    the former per-group function, so a seed gives the same replicates.

    Parameters
    ----------
    columns : ScoreColumns
    codes : array-like of int, shape (m,)
        Group of each sample, ``0 .. n_groups - 1``.
    n_groups : int
    n_boot : int
        Replicates.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``{"roc_auc": (n_boot, G), "ece": (n_boot, G)}``; NaN for an empty group.
    """
    codes = np.asarray(codes, dtype=np.int64)
    out = {"roc_auc": np.full((n_boot, n_groups), np.nan), "ece": np.full((n_boot, n_groups), np.nan)}
    if n_boot == 0 or codes.size == 0:
        return out
    n_bins = columns.n_bins
    sizes = np.bincount(codes, minlength=n_groups)
    # ECE: cells (bin, correct) with their mean confidence, for all groups at once
    flat = codes * (2 * n_bins) + columns.calibration_bin * 2 + columns.correct
    count = np.bincount(flat, minlength=n_groups * 2 * n_bins).reshape(n_groups, 2 * n_bins)
    confidence_sum = np.bincount(flat, weights=columns.confidence, minlength=n_groups * 2 * n_bins)
    mean_conf = np.where(count > 0, confidence_sum.reshape(n_groups, 2 * n_bins) / np.maximum(count, 1), 0.0)
    # AUC: counts per (group, level, label) for each class scored
    hists = [
        np.bincount(codes * (2 * k_levels) + columns.level[j] * 2 + columns.truth[j],
                    minlength=n_groups * 2 * k_levels).reshape(n_groups, 2 * k_levels)
        for j, k_levels in enumerate(columns.n_levels)
    ]
    ece_target = np.tile([0.0, 1.0], n_bins)
    for g in np.flatnonzero(sizes):
        m = sizes[g]
        draws = rng.multinomial(m, count[g] / m, size=n_boot)  # (B, 2 * n_bins)
        gap = (draws * (ece_target - mean_conf[g])).reshape(n_boot, n_bins, 2).sum(-1)
        out["ece"][:, g] = np.abs(gap).sum(1) / m
        per_class = np.array([
            _auc_from_counts(*_split_labels(rng.multinomial(m, hist[g] / m, size=n_boot), k_levels))
            for hist, k_levels in zip(hists, columns.n_levels)
        ])
        defined = np.isfinite(per_class)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["roc_auc"][:, g] = np.where(defined.any(0), np.where(defined, per_class, 0).sum(0) / defined.sum(0),
                                            np.nan)
    return out


def _split_labels(draws: np.ndarray, k_levels: int):
    """Positives and negatives per level from draws over (level, label) cells."""
    resampled = draws.reshape(draws.shape[0], k_levels, 2)
    return resampled[..., 1], resampled[..., 0]


def bootstrap_score_metrics(y_true, scores, confidence, correct, *, n_boot, rng, pos_label, n_bins, levels):
    """Bootstrap replicates of ROC AUC and ECE for one group (see :func:`bootstrap_group_scores`).

    Parameters
    ----------
    levels : list of ndarray
        Level edges per class, from :func:`score_levels` over the whole split.

    Returns
    -------
    dict
        ``{"roc_auc": (n_boot,), "ece": (n_boot,)}``.
    """
    columns = score_columns(y_true=y_true, scores=scores, confidence=confidence, correct=np.asarray(correct) > 0,
                            pos_label=pos_label, n_bins=n_bins, levels=levels)
    replicates = bootstrap_group_scores(columns, codes=np.zeros(columns.size, dtype=np.int64), n_groups=1,
                                        n_boot=n_boot, rng=rng)
    return {name: values[:, 0] for name, values in replicates.items()}
