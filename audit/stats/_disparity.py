"""What every task shares once a metric is known per group: intervals, disparities, tests, assembly.

A task engine (classification counts, clustered ratio metrics) turns its
sufficient statistics into one :class:`MetricSeries` per (grouping, metric,
class): point values, denominators, bootstrap replicates, and the two tests
that suit how the metric was computed. Everything after that is here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._groups import ALL, Grouping
from ._intervals import PROPORTION_METHODS, percentile_interval, proportion_interval
from ._results import GroupedMetrics, UndefinedMetricWarning
from ._significance import CORRECTIONS, adjust_p_values

__all__ = ["MetricSeries", "DISPARITY_COLUMNS", "fold", "series_rows", "disparity_rows", "assemble"]

DISPARITY_COLUMNS = [
    "grouping", "metric", "class", "kind", "group", "other", "difference", "difference_lower",
    "difference_upper", "ratio", "ratio_lower", "ratio_upper", "n_group", "n_other", "test", "p_value",
    "small_group",
]

# (p_value, test name); the pair test compares group g with group r, or with the rest when r is None
PairTest = Callable[[int, "int | None"], "tuple[float, str]"]
RangeTest = Callable[[], "tuple[float, str]"]


@dataclass
class MetricSeries:
    """One metric over the groups of one grouping.

    Attributes
    ----------
    value, n : ndarray of shape (G,)
        Point values and the metric's denominator per group.
    boot : ndarray of shape (B, G) or None
        Bootstrap replicates.
    successes : ndarray of shape (G,) or None
        Numerators, when the metric is a proportion of independent units (then
        Wilson / Clopper-Pearson intervals apply).
    overall_value, overall_n, overall_boot
        The same for the whole population.
    pair_test, range_test
        The significance tests that suit the metric.
    """

    metric: str
    cls: str
    value: np.ndarray
    n: np.ndarray
    boot: np.ndarray | None
    successes: np.ndarray | None
    overall_value: float
    overall_n: float
    overall_boot: np.ndarray | None
    pair_test: PairTest | None = None
    range_test: RangeTest | None = None


def fold(numerator, denominator):
    """Ratio for disparities: ``x / 0`` is inf when ``x > 0`` (a real, unbounded gap) and NaN when ``x == 0``."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0),
                        np.where(numerator > 0, np.inf, np.nan))


def _quiet_nanmax(values, axis=None):
    """``nanmax`` that is NaN, without a warning, where nothing is defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(np.asarray(values, dtype=float), axis=axis)


def _quiet_nanmin(values, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(np.asarray(values, dtype=float), axis=axis)


def series_rows(s: MetricSeries, grouping: Grouping, *, interval: str, confidence: float,
                min_group_size: int) -> tuple[list[dict], list[str]]:
    """Tidy metric rows for one series, and descriptions of its undefined values."""
    if s.successes is not None and interval in PROPORTION_METHODS:
        lower, upper = proportion_interval(s.successes, s.n, method=interval, confidence=confidence)
        method = interval
    elif s.boot is not None:
        lower, upper = percentile_interval(s.boot, confidence=confidence)
        method = "bootstrap_percentile"
    else:
        lower = upper = np.full(s.value.shape, np.nan)
        method = "none"
    rows, undefined = [], []
    for g, label in enumerate(grouping.labels):
        if np.isnan(s.value[g]):
            undefined.append(f"{s.metric}{'[' + s.cls + ']' if s.cls else ''} for {grouping.name}={label}")
        rows.append({
            "grouping": grouping.name, "group": label, "metric": s.metric, "class": s.cls, "value": s.value[g],
            "lower": lower[g], "upper": upper[g], "n": int(s.n[g]), "interval": method,
            "small_group": bool(s.n[g] < min_group_size),
        })
    return rows, undefined


def disparity_rows(s: MetricSeries, grouping: Grouping, *, reference: str | None, confidence: float,
                   min_group_size: int) -> list[dict]:
    """Disparity rows for one metric over one grouping, each with intervals and (where testable) a test.

    Kinds: ``between_groups`` (max vs min), ``to_overall`` (each group vs the
    population; tested against the rest of the population, since the overall
    figure contains the group), ``to_overall_max`` (fairlearn's ``to_overall``
    aggregate: the largest gap, not tested itself) and ``to_reference``.
    """
    labels, value, n, boot = grouping.labels, s.value, s.n, s.boot
    small = n < min_group_size
    defined = ~np.isnan(value)
    rows = []

    def row(kind, group, other, diff, diff_boot, rat, rat_boot, n_group, n_other, test, is_small):
        dl, du = percentile_interval(diff_boot, confidence=confidence) if diff_boot is not None else (np.nan, np.nan)
        rl, ru = percentile_interval(rat_boot, confidence=confidence) if rat_boot is not None else (np.nan, np.nan)
        p, test_name = test if test is not None else (float("nan"), "none")
        return {
            "grouping": grouping.name, "metric": s.metric, "class": s.cls, "kind": kind, "group": group,
            "other": other, "difference": float(diff), "difference_lower": float(dl), "difference_upper": float(du),
            "ratio": float(rat), "ratio_lower": float(rl), "ratio_upper": float(ru), "n_group": int(n_group),
            "n_other": int(n_other), "test": test_name, "p_value": p, "small_group": bool(is_small),
        }

    with_overall = boot is not None and s.overall_boot is not None
    if defined.sum() >= 2:
        hi, lo = int(np.nanargmax(value)), int(np.nanargmin(value))
        bmax = bmin = None
        if boot is not None:
            bmax, bmin = _quiet_nanmax(boot, axis=1), _quiet_nanmin(boot, axis=1)
        rows.append(row(
            "between_groups", labels[hi], labels[lo], value[hi] - value[lo], None if boot is None else bmax - bmin,
            fold(value[hi], value[lo]), None if boot is None else fold(bmax, bmin), n[hi], n[lo],
            s.range_test() if s.range_test else None, small[hi] or small[lo],
        ))
        gaps = np.abs(value - s.overall_value)
        folds = np.maximum(fold(value, s.overall_value), fold(s.overall_value, value))
        worst = int(np.nanargmax(gaps)) if np.isfinite(gaps).any() else hi
        gap_boot = fold_boot = None
        if with_overall:
            gap_boot = _quiet_nanmax(np.abs(boot - s.overall_boot[:, None]), axis=1)
            fold_boot = _quiet_nanmax(np.maximum(fold(boot, s.overall_boot[:, None]),
                                                 fold(s.overall_boot[:, None], boot)), axis=1)
        rows.append(row(
            "to_overall_max", labels[worst], ALL, gaps[worst], gap_boot, float(_quiet_nanmax(folds)), fold_boot,
            n[worst], s.overall_n, None, small[defined].any(),
        ))
    for g, label in enumerate(labels):
        if not defined[g]:
            continue
        rows.append(row(
            "to_overall", label, ALL, value[g] - s.overall_value,
            boot[:, g] - s.overall_boot if with_overall else None, fold(value[g], s.overall_value),
            fold(boot[:, g], s.overall_boot) if with_overall else None, n[g], s.overall_n,
            s.pair_test(g, None) if s.pair_test else None, small[g],
        ))
        if reference is not None and label != reference:
            r = labels.index(reference)
            if not defined[r]:
                continue
            rows.append(row(
                "to_reference", label, reference, value[g] - value[r],
                None if boot is None else boot[:, g] - boot[:, r], fold(value[g], value[r]),
                None if boot is None else fold(boot[:, g], boot[:, r]), n[g], n[r],
                s.pair_test(g, r) if s.pair_test else None, small[g] or small[r],
            ))
    return rows


def assemble(*, metric_rows, disparity_rows_, group_rows, reliability, config, undefined, correction, alpha,
             tests: str) -> GroupedMetrics:
    """Adjust the whole family of p-values, warn about undefined values and build the result."""
    disparities = pd.DataFrame(disparity_rows_, columns=DISPARITY_COLUMNS)
    for method in CORRECTIONS:
        adjusted, reject = adjust_p_values(disparities["p_value"].to_numpy(dtype=float), method=method, alpha=alpha)
        disparities[f"p_{method}"] = adjusted
        if method == correction:
            disparities["significant"] = reject
    messages = []
    if undefined:
        message = (
            f"{len(undefined)} metric values are undefined (empty group or zero denominator) and reported as NaN, "
            f"e.g. {'; '.join(undefined[:3])}"
        )
        warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
        messages.append(message)
    significance = {
        "correction": correction,
        "alpha": alpha,
        "family_size": int(disparities["p_value"].notna().sum()),
        "tests": tests,
    }
    return GroupedMetrics(
        metrics=pd.DataFrame(metric_rows), disparities=disparities, groups=pd.DataFrame(group_rows),
        reliability=reliability, config=config, significance=significance, warnings=messages,
    )
