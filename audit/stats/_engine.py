"""The disaggregation engine: one place that groups samples, for every metric and task."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._bootstrap import multinomial_bootstrap
from ._groups import ALL, OVERALL, Attribute, GroupStructure, Grouping, build_groups
from ._intervals import PROPORTION_METHODS, percentile_interval, proportion_interval
from ._rates import CLASS_METRICS, OVERALL_METRICS, confusion_cells, macro, rate_components, ratio
from ._results import GroupedMetrics, UndefinedMetricWarning
from ._scores import bootstrap_score_metrics, calibration_bins, expected_calibration_error, roc_auc
from ._significance import (
    CORRECTIONS,
    _p_from_null,
    adjust_p_values,
    permutation_pair_test_cells,
    permutation_range_test,
    permuted_group_counts,
    two_proportion_test,
)

__all__ = ["audit_classification"]

MACRO = "macro"
SCORE_METRICS = ("roc_auc", "ece")
DEFAULT_DISPARITY_METRICS = ("error_rate", "tpr", "fpr", "ppv", "selection_rate")


@dataclass
class _Series:
    """One metric over the groups of a grouping: point values, counts and replicates."""

    metric: str
    cls: str
    value: np.ndarray  # (G,)
    n: np.ndarray  # (G,) denominator
    boot: np.ndarray | None  # (B, G)
    successes: np.ndarray | None  # (G,) numerator, for rate metrics
    overall_value: float
    overall_boot: np.ndarray | None  # (B,)
    overall_successes: float | None
    overall_n: float
    score_options: dict | None = None


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
) -> GroupedMetrics:
    """Disaggregate classification metrics over groups and intersections.

    Each sample is reduced once to its confusion cell; every metric, interval,
    bootstrap replicate and test is then computed from counts.

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
    if attributes is None:
        attributes = [Attribute(name=str(c)) for c in groups.columns]
    structure, _ = build_groups(groups.reset_index(drop=True), attributes, intersections)
    for name, label in (reference_groups or {}).items():
        grouping = structure.grouping(name)
        if label not in grouping.labels:
            raise StatsInputError(
                f"reference_groups['{name}']: expected one of {grouping.labels}, found '{label}'"
            )

    n_cells_conf = n_classes * (n_classes + 1)
    flat = np.bincount(
        structure.cell_of_sample * n_cells_conf + cells, minlength=structure.n_cells * n_cells_conf
    ).reshape(structure.n_cells, n_cells_conf)
    rng = np.random.default_rng(seed)
    boot_flat = multinomial_bootstrap(flat, n_boot=n_boot, seed=rng, kind=bootstrap) if n_boot else None
    shape = (n_classes, n_classes + 1)

    rate_names = [m for m in (metrics or OVERALL_METRICS + CLASS_METRICS)]
    class_indices = [pos_label] if pos_label is not None else list(range(n_classes))
    class_labels = [classes[k] for k in class_indices] + ([] if pos_label is not None else [MACRO])

    metric_rows: list[dict] = []
    disparity_rows: list[dict] = []
    group_rows: list[dict] = []
    reliability_rows: list[dict] = []
    undefined: list[str] = []

    overall = structure.groupings[0]
    overall_conf = flat.sum(0).reshape(shape)
    overall_parts = rate_components(overall_conf)
    overall_boot_parts = rate_components(boot_flat.sum(1).reshape((-1,) + shape)) if boot_flat is not None else None
    score_data = _score_inputs(scores, y_true, y_pred, n_classes) if scores is not None else None
    overall_scores = None

    for grouping in structure.groupings:
        conf = structure.sum_cells(flat, grouping, axis=0).reshape((-1,) + shape)
        parts = rate_components(conf)
        boot_parts = None
        if boot_flat is not None:
            boot_parts = rate_components(structure.sum_cells(boot_flat, grouping, axis=1).reshape((n_boot, -1) + shape))
        sizes = conf.sum((-2, -1))
        for g, label in enumerate(grouping.labels):
            group_rows.append(
                {"grouping": grouping.name, "group": label, "n": int(sizes[g]), "small_group": bool(sizes[g] < min_group_size)}
            )
        series_list: list[_Series] = []
        for name in rate_names:
            num, den = parts[name]
            bnum, bden = boot_parts[name] if boot_parts else (None, None)
            onum, oden = overall_parts[name]
            obnum, obden = overall_boot_parts[name] if overall_boot_parts else (None, None)
            if name in CLASS_METRICS:
                for k, cls in zip(class_indices, class_labels):
                    series_list.append(
                        _Series(
                            name, cls, ratio(num[:, k], den[:, k]), den[:, k],
                            None if bnum is None else ratio(bnum[..., k], bden[..., k]),
                            num[:, k], float(ratio(onum[k], oden[k])),
                            None if obnum is None else ratio(obnum[..., k], obden[..., k]),
                            float(onum[k]), float(oden[k]),
                        )
                    )
                if pos_label is None:
                    series_list.append(
                        _Series(
                            name, MACRO, macro(ratio(num, den)), conf.sum((-2, -1)) - conf[..., :, -1].sum(-1),
                            None if bnum is None else macro(ratio(bnum, bden)), None,
                            float(macro(ratio(onum, oden))),
                            None if obnum is None else macro(ratio(obnum, obden)), None,
                            float(overall_conf.sum() - overall_conf[:, -1].sum()),
                        )
                    )
            else:
                series_list.append(
                    _Series(
                        name, "", ratio(num, den), den, None if bnum is None else ratio(bnum, bden), num,
                        float(ratio(onum, oden)), None if obnum is None else ratio(obnum, obden),
                        float(onum), float(oden),
                    )
                )
        if score_data is not None:
            score_series, bins = _score_series(
                score_data, structure, grouping, pos_label=pos_label, n_bins=n_bins, n_boot=n_boot, rng=rng,
                overall=overall_scores,
            )
            if grouping is overall:
                overall_scores = {s.metric: s for s in score_series}
                for s in score_series:
                    s.overall_value, s.overall_boot = float(s.value[0]), None if s.boot is None else s.boot[:, 0]
            series_list += score_series
            reliability_rows += bins

        for s in series_list:
            lower, upper, method = _intervals(s, interval=interval, confidence=confidence)
            for g, label in enumerate(grouping.labels):
                if np.isnan(s.value[g]):
                    undefined.append(f"{s.metric}{'[' + s.cls + ']' if s.cls else ''} for {grouping.name}={label}")
                metric_rows.append(
                    {
                        "grouping": grouping.name, "group": label, "metric": s.metric, "class": s.cls,
                        "value": s.value[g], "lower": lower[g], "upper": upper[g], "n": int(s.n[g]),
                        "interval": method, "small_group": bool(s.n[g] < min_group_size),
                    }
                )
            if grouping is not overall and s.metric in disparity_metrics:
                disparity_rows += _disparities(
                    s, grouping, conf=conf, structure=structure, score_data=score_data,
                    reference=(reference_groups or {}).get(grouping.name), confidence=confidence,
                    min_group_size=min_group_size, n_perm=n_perm, rng=rng,
                )

    metrics_frame = pd.DataFrame(metric_rows)
    disparities = pd.DataFrame(disparity_rows, columns=_DISPARITY_COLUMNS)
    family = disparities["p_value"].notna().sum() if len(disparities) else 0
    if len(disparities):
        for method in CORRECTIONS:
            adjusted, reject = adjust_p_values(disparities["p_value"].to_numpy(), method=method, alpha=alpha)
            disparities[f"p_{method}"] = adjusted
            if method == correction:
                disparities["significant"] = reject
    messages = []
    if undefined:
        message = (
            f"{len(undefined)} metric values are undefined (empty group or zero denominator) and reported as NaN, "
            f"e.g. {'; '.join(undefined[:3])}"
        )
        warnings.warn(message, UndefinedMetricWarning, stacklevel=2)
        messages.append(message)
    significance = {
        "correction": correction,
        "alpha": alpha,
        "family_size": int(family),
        "tests": "fisher_exact when an expected 2x2 count is below 5, else z_test; permutation for max-min and non-rate metrics",
    }
    return GroupedMetrics(
        metrics=metrics_frame,
        disparities=disparities,
        groups=pd.DataFrame(group_rows),
        reliability=pd.DataFrame(reliability_rows, columns=_RELIABILITY_COLUMNS),
        config={**config, "classes": classes},
        significance=significance,
        warnings=messages,
    )


_DISPARITY_COLUMNS = [
    "grouping", "metric", "class", "kind", "group", "other", "difference", "difference_lower",
    "difference_upper", "ratio", "ratio_lower", "ratio_upper", "n_group", "n_other", "test", "p_value",
    "small_group",
]
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


def _intervals(s: _Series, *, interval: str, confidence: float):
    if s.successes is not None and interval in PROPORTION_METHODS:
        lower, upper = proportion_interval(s.successes, s.n, method=interval, confidence=confidence)
        return lower, upper, interval
    if s.boot is None:
        nan = np.full(s.value.shape, np.nan)
        return nan, nan.copy(), "none"
    lower, upper = percentile_interval(s.boot, confidence=confidence)
    return lower, upper, "bootstrap_percentile"


def _disparities(s: _Series, grouping: Grouping, *, conf, structure, score_data, reference, confidence,
                 min_group_size, n_perm, rng) -> list[dict]:
    """Disparity rows for one metric over one grouping, each with an interval and (where testable) a test."""
    labels = grouping.labels
    value, n = s.value, s.n
    small = n < min_group_size
    rows = []
    defined = ~np.isnan(value)

    def row(kind, group, other, diff, diff_boot, rat, rat_boot, n_group, n_other, test, p, is_small):
        dl, du = percentile_interval(diff_boot, confidence=confidence) if diff_boot is not None else (np.nan, np.nan)
        rl, ru = percentile_interval(rat_boot, confidence=confidence) if rat_boot is not None else (np.nan, np.nan)
        return {
            "grouping": grouping.name, "metric": s.metric, "class": s.cls, "kind": kind, "group": group,
            "other": other, "difference": diff, "difference_lower": float(dl), "difference_upper": float(du),
            "ratio": rat, "ratio_lower": float(rl), "ratio_upper": float(ru), "n_group": n_group,
            "n_other": n_other, "test": test, "p_value": p, "small_group": bool(is_small),
        }

    boot = s.boot
    if defined.sum() >= 2:
        hi = int(np.nanargmax(value))
        lo = int(np.nanargmin(value))
        bmax = bmin = None
        if boot is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                bmax, bmin = np.nanmax(boot, axis=1), np.nanmin(boot, axis=1)
        p, test = _range_test(s, conf, grouping, score_data, structure, n_perm=n_perm, rng=rng)
        rows.append(row(
            "between_groups", labels[hi], labels[lo], float(value[hi] - value[lo]),
            None if boot is None else bmax - bmin, float(_fold(value[hi], value[lo])),
            None if boot is None else _fold(bmax, bmin), int(n[hi]), int(n[lo]), test, p, small[hi] or small[lo],
        ))
        # fairlearn's "to_overall" aggregates: the largest gap between a group and the overall value
        gaps = np.abs(value - s.overall_value)
        folds = np.maximum(_fold(value, s.overall_value), _fold(s.overall_value, value))
        worst = int(np.nanargmax(gaps)) if np.isfinite(gaps).any() else hi
        gap_boot = fold_boot = None
        if boot is not None and s.overall_boot is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                gap_boot = np.nanmax(np.abs(boot - s.overall_boot[:, None]), axis=1)
                fold_boot = np.nanmax(
                    np.maximum(_fold(boot, s.overall_boot[:, None]), _fold(s.overall_boot[:, None], boot)), axis=1
                )
        rows.append(row(
            "to_overall_max", labels[worst], ALL, float(gaps[worst]), gap_boot, _quiet_nanmax(folds),
            fold_boot, int(n[worst]), int(s.overall_n), "none", float("nan"), bool(small[defined].any()),
        ))
    for g, label in enumerate(labels):
        if not defined[g]:
            continue
        # each group against the rest of the population (the overall figure includes the group itself)
        p, test = _pair_test(s, conf, grouping, score_data, structure, g, None, n_perm=n_perm, rng=rng)
        rows.append(row(
            "to_overall", label, ALL, float(value[g] - s.overall_value),
            None if boot is None or s.overall_boot is None else boot[:, g] - s.overall_boot,
            float(_fold(value[g], s.overall_value)),
            None if boot is None or s.overall_boot is None else _fold(boot[:, g], s.overall_boot),
            int(n[g]), int(s.overall_n), test, p, small[g],
        ))
        if reference is not None and label != reference:
            r = labels.index(reference)
            if not defined[r]:
                continue
            p, test = _pair_test(s, conf, grouping, score_data, structure, g, r, n_perm=n_perm, rng=rng)
            rows.append(row(
                "to_reference", label, reference, float(value[g] - value[r]),
                None if boot is None else boot[:, g] - boot[:, r], float(_fold(value[g], value[r])),
                None if boot is None else _fold(boot[:, g], boot[:, r]), int(n[g]), int(n[r]), test, p,
                small[g] or small[r],
            ))
    return rows


def _fold(numerator, denominator):
    """Ratio for disparities: ``x / 0`` is inf when ``x > 0`` (a real, unbounded gap) and NaN when ``x == 0``."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0),
                        np.where(numerator > 0, np.inf, np.nan))


def _quiet_nanmax(values) -> float:
    """``nanmax`` that is NaN, without a warning, when nothing is defined."""
    values = np.asarray(values, dtype=float)
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")


def _metric_of_cells(s: _Series, n_classes: int):
    """The metric as a function of flattened confusion counts ``(..., C*(C+1))``."""

    def statistic(cells):
        parts = rate_components(np.asarray(cells).reshape(np.shape(cells)[:-1] + (n_classes, n_classes + 1)))
        num, den = parts[s.metric]
        values = ratio(num, den)
        if s.metric in CLASS_METRICS:
            return macro(values)
        return values

    return statistic


def _range_test(s, conf, grouping, score_data, structure, *, n_perm, rng):
    if s.successes is not None:
        return permutation_range_test(s.successes, s.n, n_perm=n_perm, rng=rng), "permutation"
    if s.metric in SCORE_METRICS:
        codes = grouping.cell_to_group[structure.cell_of_sample]
        return _score_permutation(score_data, codes, s, None, None, n_perm=n_perm, rng=rng, **s.score_options), "permutation"
    # a macro metric: permute group labels over the pooled confusion cells, one group at a time
    n_classes = conf.shape[-2]
    counts = conf.reshape(conf.shape[0], -1).astype(np.int64)
    statistic = _metric_of_cells(s, n_classes)
    keep = counts.sum(1) > 0
    counts = counts[keep]
    observed = np.nanmax(statistic(counts)) - np.nanmin(statistic(counts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN permutations are dropped below
        values = statistic(permuted_group_counts(counts, n_perm=n_perm, rng=rng))
        null = np.where(np.isfinite(values).sum(1) >= 2, np.nanmax(values, 1) - np.nanmin(values, 1), np.nan)
    return _p_from_null(float(observed), null), "permutation"


def _pair_test(s, conf, grouping, score_data, structure, g, r, *, n_perm, rng):
    """Test group ``g`` against group ``r``, or against the rest of the population when ``r`` is None."""
    if s.successes is not None:
        k1, n1 = s.successes[g], s.n[g]
        if r is None:
            k2, n2 = s.overall_successes - k1, s.overall_n - n1
        else:
            k2, n2 = s.successes[r], s.n[r]
        return two_proportion_test(float(k1), float(n1), float(k2), float(n2))
    if s.metric in SCORE_METRICS:
        codes = grouping.cell_to_group[structure.cell_of_sample]
        return _score_permutation(score_data, codes, s, g, r, n_perm=n_perm, rng=rng, **s.score_options), "permutation"
    flat = conf.reshape(conf.shape[0], -1).astype(np.int64)
    other = flat.sum(0) - flat[g] if r is None else flat[r]
    statistic = _metric_of_cells(s, conf.shape[-2])
    return permutation_pair_test_cells(flat[g], other, statistic, n_perm=n_perm, rng=rng), "permutation"


# --- score metrics -----------------------------------------------------------------------------------------


@dataclass
class _ScoreInputs:
    y_true: np.ndarray
    scores: np.ndarray
    processed: np.ndarray  # bool: the sample has a prediction (abstentions carry no score)
    confidence: np.ndarray
    correct: np.ndarray


def _score_inputs(scores, y_true, y_pred, n_classes) -> _ScoreInputs:
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(y_true), n_classes):
        raise StatsInputError(f"expected scores of shape ({len(y_true)}, {n_classes}), found {scores.shape}")
    processed = y_pred >= 0
    if not np.isfinite(scores[processed]).all():
        raise StatsInputError("expected finite scores for every sample with a prediction, found NaN or inf")
    confidence = np.where(processed, np.nan_to_num(scores.max(1)), 0.0)
    return _ScoreInputs(y_true, scores, processed, confidence, y_pred == y_true)


def _score_values(data: _ScoreInputs, members: np.ndarray, *, pos_label, n_bins) -> dict[str, float]:
    members = members[data.processed[members]]
    return {
        "roc_auc": roc_auc(data.y_true[members], data.scores[members], pos_label=pos_label),
        "ece": expected_calibration_error(data.confidence[members], data.correct[members], n_bins=n_bins),
    }


def _score_series(data, structure: GroupStructure, grouping: Grouping, *, pos_label, n_bins, n_boot, rng, overall):
    codes = grouping.cell_to_group[structure.cell_of_sample]
    n_groups = len(grouping.labels)
    values = {m: np.full(n_groups, np.nan) for m in SCORE_METRICS}
    boots = {m: np.full((n_boot, n_groups), np.nan) for m in SCORE_METRICS}
    counts = np.zeros(n_groups)
    bins = []
    for g in range(n_groups):
        members = np.flatnonzero((codes == g) & data.processed)
        counts[g] = members.size
        for metric, v in _score_values(data, members, pos_label=pos_label, n_bins=n_bins).items():
            values[metric][g] = v
        if members.size and n_boot:
            # row bootstrap within the group: AUC needs a ranking, so counts do not suffice
            replicates = bootstrap_score_metrics(
                data.y_true[members], data.scores[members], data.confidence[members],
                data.correct[members].astype(float), n_boot=n_boot, rng=rng, pos_label=pos_label, n_bins=n_bins,
            )
            for metric in SCORE_METRICS:
                boots[metric][:, g] = replicates[metric]
        edges, count, mean_conf, acc = calibration_bins(data.confidence[members], data.correct[members], n_bins=n_bins)
        for b in range(n_bins):
            bins.append({
                "grouping": grouping.name, "group": grouping.labels[g], "bin": b, "bin_lower": edges[b],
                "bin_upper": edges[b + 1], "count": int(count[b]), "mean_confidence": mean_conf[b], "accuracy": acc[b],
            })
    series = []
    for metric in SCORE_METRICS:
        ref = overall[metric] if overall else None
        series.append(_Series(
            metric, "", values[metric], counts, boots[metric] if n_boot else None, None,
            float(ref.value[0]) if ref else float("nan"), None if ref is None or ref.boot is None else ref.boot[:, 0],
            None, float(ref.n[0]) if ref else float(counts.sum()), {"pos_label": pos_label, "n_bins": n_bins},
        ))
    return series, bins


def _score_permutation(data, codes, s, g, r, *, n_perm, rng, pos_label, n_bins):
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
            _score_values(data, members[assign == lab], pos_label=pos_label, n_bins=n_bins)[s.metric] for lab in present
        ])
        if np.isfinite(values).sum() < 2:
            return np.nan
        return np.nanmax(values) - np.nanmin(values)

    observed = statistic(labels)
    null = np.array([statistic(rng.permutation(labels)) for _ in range(n_perm)])
    return _p_from_null(float(observed), null)
