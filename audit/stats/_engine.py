"""The disaggregation engine: one place that groups samples, for every metric and task."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._bootstrap import multinomial_bootstrap
from ._disparity import MetricSeries, assemble, disparity_rows, range_by_pairs, series_rows
from ._groups import Attribute, Grouping, GroupStructure, build_groups
from ._intervals import PROPORTION_METHODS
from ._rates import CLASS_METRICS, OVERALL_METRICS, confusion_cells, macro, rate_components, ratio
from ._results import GroupedMetrics
from ._scores import (
    ScoreColumns,
    bootstrap_group_scores,
    expected_calibration_error,
    group_scores,
    roc_auc,
    score_columns,
)
from ._significance import (
    CORRECTIONS,
    STOP_AFTER_HITS,
    monte_carlo_p,
    permutation_pair_test_cells,
    permuted_group_counts,
    two_proportion_test,
)

__all__ = ["audit_classification"]

MACRO = "macro"
SCORE_METRICS = ("roc_auc", "ece")
# score-metric permutations recompute the metric per permutation in Python: cap the family refinement
MAX_SCORE_PERMUTATIONS = 5_000
DEFAULT_DISPARITY_METRICS = ("error_rate", "tpr", "fpr", "ppv", "selection_rate")


def audit_classification(
    *,
    y_true,
    y_pred,
    groups: pd.DataFrame,
    classes: Sequence[str],
    attributes: Sequence[Attribute] | None = None,
    intersections: Sequence[Sequence[str]] = (),
    pos_label: int | None = None,
    scores=None,
    reference_groups: Mapping[str, str] | None = None,
    metrics: Sequence[str] | None = None,
    disparity_metrics: Sequence[str] = DEFAULT_DISPARITY_METRICS,
    interval: str = "wilson",
    confidence: float = 0.95,
    n_boot: int = 1000,
    bootstrap: str = "plain",
    n_perm: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_group_size: int = 50,
    n_bins: int = 10,
    counts=None,
    score_rows=None,
) -> GroupedMetrics:
    """Disaggregate classification metrics over groups and intersections.

    Each sample is reduced once to its confusion cell; every metric, interval,
    bootstrap replicate and test is then computed from counts. So the input may
    be one row per sample, or one row per distinct (attribute values, true
    class, predicted class) with its ``counts``: the results are the same,
    number for number (the bootstrap and the permutations draw from the same
    cell counts with the same seed).

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        True class index, ``0 .. C-1``.
    y_pred : array-like of int, shape (n,)
        Predicted class index, or ``-1`` where the system abstained (made no
        prediction, Gender Shades' "NA").
    groups : DataFrame, n rows
        Raw attribute values of each sample, in the same order.
    classes : sequence of str
        Class names, ``C`` of them.
    attributes : sequence of Attribute, optional
        The attributes that define groups and how to bin them. Default: every
        column of ``groups`` as a nominal attribute.
    intersections : sequence of sequences of str
        Attribute names to cross, e.g. ``[("gender", "skin_type")]``.
    pos_label : int, optional
        The positive class of a binary task. Disparities and AUC are then
        reported for it alone; otherwise for every class and the macro average.
    scores : array-like of shape (n, C), optional
        Class probabilities; enables ``roc_auc`` and ``ece`` per group.
    reference_groups : mapping, optional
        Grouping name to its reference group label, e.g.
        ``{"skin_type": "lighter", "gender × skin_type": "male × lighter"}``.
    metrics : sequence of str, optional
        Rate metrics to report; default all of them.
    disparity_metrics : sequence of str
        Metrics compared between groups and tested.
    interval : {"wilson", "clopper-pearson", "bootstrap"}
        Interval for proportions. Every other quantity (macro averages, AUC,
        ECE, disparities) gets a bootstrap percentile interval.
    confidence : float
        Interval coverage.
    n_boot : int
        Bootstrap replicates (0 disables bootstrap intervals).
    bootstrap : {"plain", "stratified"}
        ``stratified`` keeps every finest group's size fixed.
    n_perm : int
        Permutations for permutation tests.
    seed : int
        Seed for every random draw; equal seeds give equal results.
    alpha : float
        Significance level of the multiplicity-controlled flags.
    correction : {"fdr_bh", "holm"}
        Benjamini-Hochberg (false discovery rate) or Holm (family-wise error)
        over all the tests of this audit. Both adjusted p-values are reported.
    min_group_size : int
        Groups whose metric denominator is below this are flagged ``small_group``.
    n_bins : int
        Bins of the reliability curve and ECE.
    counts : array-like of int, shape (n,), optional
        How many samples each row stands for (each at least 1): with it, the
        rows of ``y_true``, ``y_pred`` and ``groups`` are distinct cells, not
        samples. Default: one sample per row.
    score_rows : array-like of int, shape (N,), optional
        With ``counts`` and ``scores``: the row of each scored sample, so
        ``scores`` has one row per sample (``N = sum(counts)``, in the order
        the score metrics should see them) and every row ``i`` is named
        ``counts[i]`` times.

    Returns
    -------
    GroupedMetrics
    """
    config = _validate(locals())
    classes = [str(c) for c in classes]
    n_classes = len(classes)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(groups) != len(y_true):
        raise StatsInputError(f"expected groups to have one row per sample ({len(y_true)}), found {len(groups)} rows")
    cells = confusion_cells(y_true, y_pred, n_classes=n_classes)
    counts, score_rows = _row_counts(counts, score_rows, n_rows=len(y_true), scored=scores is not None)
    if attributes is None:
        attributes = [Attribute(name=str(c)) for c in groups.columns]
    multi = [a.name for a in attributes if a.multi]
    if multi:
        raise StatsInputError(f"expected attributes with one value per sample, found multi attributes {multi} "
                              "(overlapping groups are supported by audit_ratio_metrics only)")
    structure, _ = build_groups(groups.reset_index(drop=True), attributes, intersections)
    for name, label in (reference_groups or {}).items():
        grouping = structure.grouping(name)
        if label not in grouping.labels:
            raise StatsInputError(
                f"reference_groups['{name}']: expected one of {grouping.labels}, found '{label}'"
            )

    n_cells_conf = n_classes * (n_classes + 1)
    flat = np.bincount(
        structure.cell_of_sample * n_cells_conf + cells, weights=counts, minlength=structure.n_cells * n_cells_conf
    ).astype(np.int64).reshape(structure.n_cells, n_cells_conf)
    rng = np.random.default_rng(seed)
    boot_flat = multinomial_bootstrap(flat, n_boot=n_boot, seed=rng, kind=bootstrap) if n_boot else None
    shape = (n_classes, n_classes + 1)

    rate_names = [m for m in (metrics or OVERALL_METRICS + CLASS_METRICS)]
    class_indices = [pos_label] if pos_label is not None else list(range(n_classes))
    class_labels = [classes[k] for k in class_indices] + ([] if pos_label is not None else [MACRO])

    metric_rows: list[dict] = []
    all_disparities: list[dict] = []
    group_rows: list[dict] = []
    reliability_rows: list[dict] = []
    undefined: list[str] = []

    overall = structure.groupings[0]
    overall_conf = flat.sum(0).reshape(shape)
    overall_parts = rate_components(overall_conf)
    overall_boot_parts = rate_components(boot_flat.sum(1).reshape((-1,) + shape)) if boot_flat is not None else None
    overall_processed = float(overall_conf.sum() - overall_conf[:, -1].sum())
    score_data = None
    if scores is not None:  # per sample: with counts, score_rows names each sample's row
        sample = slice(None) if score_rows is None else score_rows
        score_data = _score_inputs(scores, y_true[sample], y_pred[sample], n_classes, structure.cell_of_sample[sample],
                                   pos_label=pos_label, n_bins=n_bins)
    overall_scores: dict[str, MetricSeries] = {}

    for grouping in structure.groupings:
        conf = structure.sum_cells(flat, grouping, axis=0).reshape((-1,) + shape)
        parts = rate_components(conf)
        boot_parts = None
        if boot_flat is not None:
            boot_parts = rate_components(structure.sum_cells(boot_flat, grouping, axis=1).reshape((n_boot, -1) + shape))
        sizes = conf.sum((-2, -1))
        processed = sizes - conf[..., :, -1].sum(-1)
        for g, label in enumerate(grouping.labels):
            group_rows.append(
                {"grouping": grouping.name, "group": label, "n": int(sizes[g]), "small_group": bool(sizes[g] < min_group_size)}
            )
        flat_conf = conf.reshape(conf.shape[0], -1).astype(np.int64)

        def proportion(name, num, den, bnum, bden, onum, oden, obnum, obden, cls):
            """A proportion of independent samples: Wilson/CP intervals, Fisher/z tests."""
            def pair(g, r):
                k2, n2 = (onum - num[g], oden - den[g]) if r is None else (num[r], den[r])
                return two_proportion_test(float(num[g]), float(den[g]), float(k2), float(n2))

            value = ratio(num, den)
            return MetricSeries(
                name, cls, value, den, None if bnum is None else ratio(bnum, bden), num,
                float(ratio(onum, oden)), float(oden), None if obnum is None else ratio(obnum, obden), pair,
                range_by_pairs(pair, value),
            )

        # a macro average means nothing in a group where a class cannot occur (no sample of it)
        class_absent = parts["tpr"][1] == 0  # (G, C): no true sample of the class

        def macro_series(name, num, den, bnum, bden, onum, oden, obnum, obden):
            """A macro average over classes: permutation tests on the pooled confusion cells."""
            statistic = functools.partial(_macro_of_cells, metric=name, n_classes=n_classes)

            # bound now: a rerun happens after the loop over groupings has moved on
            def pair(g, r, counts=flat_conf, statistic=statistic):
                own, other = counts[g], (counts.sum(0) - counts[g] if r is None else counts[r])

                def rerun(b):
                    return permutation_pair_test_cells(own, other, statistic, n_perm=b, rng=rng,
                                                       stop_after_hits=STOP_AFTER_HITS)

                return permutation_pair_test_cells(own, other, statistic, n_perm=n_perm, rng=rng), "permutation", rerun

            def spread(hi, lo, counts=flat_conf[~class_absent.any(-1)], statistic=statistic):
                def rerun(b):
                    return _cells_range_test(counts, statistic, n_perm=b, rng=rng, stop_after_hits=STOP_AFTER_HITS)

                return _cells_range_test(counts, statistic, n_perm=n_perm, rng=rng), "permutation", rerun

            return MetricSeries(
                name, MACRO, macro(ratio(num, den)), processed, None if bnum is None else macro(ratio(bnum, bden)),
                None, float(macro(ratio(onum, oden))), overall_processed,
                None if obnum is None else macro(ratio(obnum, obden)), pair, spread,
                not_applicable=class_absent.any(-1),
            )

        series_list: list[MetricSeries] = []
        for name in rate_names:
            num, den = parts[name]
            bnum, bden = boot_parts[name] if boot_parts else (None, None)
            onum, oden = overall_parts[name]
            obnum, obden = overall_boot_parts[name] if overall_boot_parts else (None, None)
            if name in CLASS_METRICS:
                for k, cls in zip(class_indices, class_labels):
                    series_list.append(proportion(
                        name, num[:, k], den[:, k], _pick(bnum, k), _pick(bden, k), onum[k], oden[k],
                        _pick(obnum, k), _pick(obden, k), cls,
                    ))
                if pos_label is None and name != "selection_rate":  # macro selection rate is 1/C, always
                    series_list.append(macro_series(name, num, den, bnum, bden, onum, oden, obnum, obden))
            else:
                series_list.append(proportion(name, num, den, bnum, bden, onum, oden, obnum, obden, ""))
        if score_data is not None:
            score_series, bins = _score_series(
                score_data, structure, grouping, pos_label=pos_label, n_bins=n_bins, n_boot=n_boot, rng=rng,
                n_perm=n_perm, overall=overall_scores,
            )
            if grouping is overall:
                overall_scores = {s.metric: s for s in score_series}
            series_list += score_series
            reliability_rows += bins

        for s in series_list:
            rows, missing = series_rows(s, grouping, interval=interval, confidence=confidence,
                                        min_group_size=min_group_size)
            metric_rows += rows
            undefined += missing
            if grouping is not overall and s.metric in disparity_metrics:
                all_disparities += disparity_rows(
                    s, grouping, reference=(reference_groups or {}).get(grouping.name), confidence=confidence,
                    min_group_size=min_group_size,
                )

    return assemble(
        metric_rows=metric_rows, disparity_rows_=all_disparities, group_rows=group_rows,
        reliability=pd.DataFrame(reliability_rows, columns=_RELIABILITY_COLUMNS),
        config={**config, "classes": classes}, undefined=undefined, correction=correction, alpha=alpha,
        tests=(
            "proportions: Fisher's exact test when an expected 2x2 count is below 5, else the pooled two-proportion "
            "z-test; max-min and non-rate metrics: permutation tests of the group labels"
        ),
    )


_RELIABILITY_COLUMNS = ["grouping", "group", "bin", "bin_lower", "bin_upper", "count", "mean_confidence", "accuracy"]


def _validate(arguments: dict) -> dict:
    if arguments["interval"] not in (*PROPORTION_METHODS, "bootstrap"):
        raise StatsInputError(
            f"expected interval in {[*PROPORTION_METHODS, 'bootstrap']}, found '{arguments['interval']}'"
        )
    if arguments["correction"] not in CORRECTIONS:
        raise StatsInputError(f"expected correction in {sorted(CORRECTIONS)}, found '{arguments['correction']}'")
    for name in ("alpha", "confidence"):
        if not 0.0 < float(arguments[name]) < 1.0:
            raise StatsInputError(f"expected {name} in (0, 1), found {arguments[name]}")
    for name in ("n_boot", "n_perm", "min_group_size"):
        if int(arguments[name]) < 0:
            raise StatsInputError(f"expected {name} >= 0, found {arguments[name]}")
    n_classes = len(arguments["classes"])
    if n_classes < 2:
        raise StatsInputError(f"expected at least 2 classes, found {n_classes}")
    pos = arguments["pos_label"]
    if pos is not None and not (0 <= pos < n_classes):
        raise StatsInputError(f"expected pos_label in [0, {n_classes - 1}], found {pos}")
    known = set(OVERALL_METRICS + CLASS_METRICS)
    for name in arguments["metrics"] or ():
        if name not in known:
            raise StatsInputError(f"expected metrics among {sorted(known)}, found '{name}'")
    for name in arguments["disparity_metrics"]:
        if name not in known | set(SCORE_METRICS):
            raise StatsInputError(f"expected disparity metrics among {sorted(known | set(SCORE_METRICS))}, found '{name}'")
    keys = ("pos_label", "interval", "confidence", "n_boot", "bootstrap", "n_perm", "seed", "alpha", "correction",
            "min_group_size", "n_bins")
    config = {key: arguments[key] for key in keys}
    config["intersections"] = [list(c) for c in arguments["intersections"]]
    config["reference_groups"] = dict(arguments["reference_groups"] or {})
    config["disparity_metrics"] = list(arguments["disparity_metrics"])
    return config


def _row_counts(counts, score_rows, *, n_rows: int, scored: bool):
    """Check ``counts`` (samples per row) and ``score_rows`` (each scored sample's row); None for one per row."""
    if counts is None:
        if score_rows is not None:
            raise StatsInputError("expected score_rows only with counts, found score_rows without counts")
        return None, None
    counts = np.asarray(counts)
    if counts.shape != (n_rows,) or not np.issubdtype(counts.dtype, np.integer):
        raise StatsInputError(f"expected counts to be {n_rows} integers (one per row), found shape {counts.shape} "
                              f"and dtype {counts.dtype}")
    if n_rows and counts.min() < 1:
        raise StatsInputError(f"expected counts >= 1, found {counts.min()} at position {int(np.argmin(counts))}")
    if not scored:
        if score_rows is not None:
            raise StatsInputError("expected score_rows only with scores, found score_rows without scores")
        return counts, None
    if score_rows is None:
        raise StatsInputError("expected score_rows (the row of each scored sample) with counts and scores, found none")
    score_rows = np.asarray(score_rows)
    if score_rows.ndim != 1 or not np.issubdtype(score_rows.dtype, np.integer) or (
            score_rows.size and (score_rows.min() < 0 or score_rows.max() >= n_rows)):
        raise StatsInputError(f"expected score_rows to be integers in [0, {n_rows - 1}], found another array")
    if not np.array_equal(np.bincount(score_rows, minlength=n_rows), counts):
        raise StatsInputError("expected score_rows to name every row as often as its count, found other numbers")
    return counts, score_rows


def _pick(array, k):
    """Class ``k`` of a per-class array, passing ``None`` through."""
    return None if array is None else array[..., k]


def _macro_of_cells(cells, *, metric: str, n_classes: int):
    """A macro-averaged metric as a function of flattened confusion counts ``(..., C*(C+1))``."""
    cells = np.asarray(cells)
    num, den = rate_components(cells.reshape(cells.shape[:-1] + (n_classes, n_classes + 1)))[metric]
    return macro(ratio(num, den))


def _cells_range_test(counts, statistic, *, n_perm, rng, stop_after_hits=None) -> float:
    """Permutation test of max - min of a count-based metric over groups (empty groups left out)."""
    counts = counts[counts.sum(1) > 0]
    values = statistic(counts)
    if np.isfinite(values).sum() < 2:
        return float("nan")
    observed = np.nanmax(values) - np.nanmin(values)

    def draw_null(k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # permutations with < 2 defined groups are dropped
            null_values = statistic(permuted_group_counts(counts, n_perm=k, rng=rng))
            return np.where(np.isfinite(null_values).sum(1) >= 2,
                            np.nanmax(null_values, 1) - np.nanmin(null_values, 1), np.nan)

    return monte_carlo_p(float(observed), draw_null, n_perm, chunk=min(5_000, max(1, 2_000_000 // counts.size)),
                         stop_after_hits=stop_after_hits)


# --- score metrics -----------------------------------------------------------------------------------------


@dataclass
class _ScoreInputs:
    y_true: np.ndarray
    scores: np.ndarray
    processed: np.ndarray  # bool: the sample has a prediction (abstentions carry no score)
    confidence: np.ndarray
    correct: np.ndarray
    rows: np.ndarray  # indices of the processed samples
    columns: ScoreColumns  # the processed samples laid out for every grouping
    cell_of_sample: np.ndarray  # finest cell of each scored sample


def _score_inputs(scores, y_true, y_pred, n_classes, cell_of_sample, *, pos_label, n_bins) -> _ScoreInputs:
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(y_true), n_classes):
        raise StatsInputError(f"expected scores of shape ({len(y_true)}, {n_classes}), found {scores.shape}")
    processed = y_pred >= 0
    if not np.isfinite(scores[processed]).all():
        raise StatsInputError("expected finite scores for every sample with a prediction, found NaN or inf")
    confidence = np.where(processed, np.nan_to_num(scores.max(1)), 0.0)
    correct = y_pred == y_true
    rows = np.flatnonzero(processed)
    columns = score_columns(y_true=y_true[rows], scores=scores[rows], confidence=confidence[rows],
                            correct=correct[rows], pos_label=pos_label, n_bins=n_bins)
    return _ScoreInputs(y_true, scores, processed, confidence, correct, rows, columns, cell_of_sample)


def _score_values(data: _ScoreInputs, members: np.ndarray, *, pos_label, n_bins) -> dict[str, float]:
    members = members[data.processed[members]]
    return {
        "roc_auc": roc_auc(data.y_true[members], data.scores[members], pos_label=pos_label),
        "ece": expected_calibration_error(data.confidence[members], data.correct[members], n_bins=n_bins),
    }


def _score_series(data, structure: GroupStructure, grouping: Grouping, *, pos_label, n_bins, n_boot, rng, n_perm,
                  overall: dict):
    """AUC and ECE per group with count-bootstrap replicates, and their reliability bins."""
    codes = grouping.cell_to_group[data.cell_of_sample]
    n_groups = len(grouping.labels)
    processed_codes = codes[data.rows]
    points = group_scores(data.columns, codes=processed_codes, n_groups=n_groups)
    values = {m: points[m] for m in SCORE_METRICS}
    counts = points["n"].astype(float)
    # resampled within each group, on counts per score level and calibration cell
    boots = bootstrap_group_scores(data.columns, codes=processed_codes, n_groups=n_groups, n_boot=n_boot, rng=rng)
    edges = points["bin_edges"]
    bins = [
        {
            "grouping": grouping.name, "group": grouping.labels[g], "bin": b, "bin_lower": edges[b],
            "bin_upper": edges[b + 1], "count": int(points["bin_count"][g, b]),
            "mean_confidence": points["bin_confidence"][g, b], "accuracy": points["bin_accuracy"][g, b],
        }
        for g in range(n_groups) for b in range(n_bins)
    ]
    series = []
    for metric in SCORE_METRICS:
        ref = overall.get(metric)
        test = functools.partial(_score_permutation, data, codes, metric=metric, rng=rng,
                                 pos_label=pos_label, n_bins=n_bins)
        boot = boots[metric] if n_boot else None
        series.append(MetricSeries(
            metric, "", values[metric], counts, boot, None,
            float(ref.value[0]) if ref else float(values[metric][0]),
            float(ref.n[0]) if ref else float(counts.sum()),
            (ref.boot[:, 0] if ref.boot is not None else None) if ref else (None if boot is None else boot[:, 0]),
            lambda g, r, test=test: (test(g, r, n_perm=n_perm), "permutation",
                                     lambda b, g=g, r=r: test(g, r, n_perm=min(b, MAX_SCORE_PERMUTATIONS))),
            lambda hi, lo, test=test: (test(None, None, n_perm=n_perm), "permutation",
                                       lambda b: test(None, None, n_perm=min(b, MAX_SCORE_PERMUTATIONS))),
        ))
    return series, bins


def _score_permutation(data, codes, g, r, *, metric, n_perm, rng, pos_label, n_bins):
    """Permutation p-value for a score metric: ``|m(g) - m(r)|`` (or the range when ``g`` is None)."""
    processed = data.processed
    if g is None:
        members = np.flatnonzero(processed)
        labels = codes[members]
    else:
        in_other = (codes != g) if r is None else (codes == r)
        members = np.flatnonzero(processed & ((codes == g) | in_other))
        labels = (codes[members] == g).astype(int)
    present = np.unique(labels)
    if present.size < 2:
        return float("nan")

    def statistic(assign):
        values = np.array([
            _score_values(data, members[assign == lab], pos_label=pos_label, n_bins=n_bins)[metric] for lab in present
        ])
        if np.isfinite(values).sum() < 2:
            return np.nan
        return np.nanmax(values) - np.nanmin(values)

    observed = statistic(labels)
    return monte_carlo_p(float(observed), lambda k: [statistic(rng.permutation(labels)) for _ in range(k)], n_perm,
                         chunk=500, stop_after_hits=None if n_perm <= 1_000 else STOP_AFTER_HITS)
