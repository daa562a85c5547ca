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

from ._clustered import floor_variance
from ._groups import ALL, Grouping
from ._intervals import PROPORTION_METHODS, bootstrap_interval, percentile_interval, proportion_interval
from ._results import GroupedMetrics, UndefinedMetricWarning
from ._significance import CORRECTIONS, adjust_p_values

__all__ = ["MetricSeries", "DISPARITY_COLUMNS", "fold", "range_by_pairs", "series_rows", "disparity_rows", "assemble"]

DISPARITY_COLUMNS = [
    "grouping", "metric", "class", "kind", "group", "other", "difference", "difference_lower",
    "difference_upper", "ratio", "ratio_lower", "ratio_upper", "n_group", "n_other", "test", "p_value",
    "small_group",
]

# permutations per test in the family when a permutation p-value is refined (see assemble)
PERMUTATIONS_PER_FAMILY_TEST = 10
MAX_PERMUTATIONS = 100_000
# a permutation p-value counts as at the floor when at most this many null statistics (plus one) reached it
NEAR_FLOOR_HITS = 11

# (p_value, test name[, rerun]); the pair test compares group g with group r, or with the rest when r is None
PairTest = Callable[[int, "int | None"], tuple]
# the range test gets the indices of the max and the min group
RangeTest = Callable[[int, int], tuple]


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
        Numerators, when the metric is a proportion of 0/1 units (then Wilson /
        Clopper-Pearson intervals apply); effective numerators when the units
        are clustered.
    overall_value, overall_n, overall_boot
        The same for the whole population.
    pair_test, range_test
        The significance tests that suit the metric.
    n_effective : ndarray of shape (G,) or None
        Effective sample sizes of clustered proportions (``n / deff``): the
        proportion intervals use them instead of ``n``.
    units : ndarray of shape (G,) or None
        Resampling units (images, or samples) behind each group's value: the
        size on which a degenerate bootstrap interval falls back to Wilson.
        Default ``n``.
    not_applicable : ndarray of bool, shape (G,) or None
        Groups in which the metric means nothing by construction (a macro
        average over classes that cannot occur there): no value, no interval,
        no disparity.
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
    n_effective: np.ndarray | None = None
    units: np.ndarray | None = None
    not_applicable: np.ndarray | None = None


def range_by_pairs(pair: PairTest, value: np.ndarray) -> RangeTest:
    """The max - min test as the test of the max and min pair, Bonferroni-adjusted over every pair of defined groups.

    The max and min are chosen after looking, so the adjustment keeps the test valid; an exact or asymptotic pair
    p-value has no permutation floor for Holm to multiply.
    """
    def spread(hi: int, lo: int):
        p, test = pair(hi, lo)[:2]
        defined = int(np.isfinite(value).sum())
        pairs = defined * (defined - 1) // 2
        if not np.isfinite(p):
            return float("nan"), test
        return min(1.0, p * pairs), f"{test}_bonferroni_{pairs}_pairs"

    return spread


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


def series_rows(s: MetricSeries, grouping: Grouping, *, interval: str, confidence: float,
                min_group_size: int) -> tuple[list[dict], list[str]]:
    """Tidy metric rows for one series, and descriptions of its undefined values.

    Proportions get a Wilson or Clopper-Pearson interval, on the effective
    sample size when their units are clustered (interval name suffixed
    ``_effective_n``); everything else a bootstrap percentile interval that
    falls back to Wilson on the group's resampling units where the bootstrap
    is degenerate (``bootstrap_percentile_degenerate_wilson``). No interval
    has zero width while ``n`` is finite.
    """
    value = s.value
    if s.not_applicable is not None:
        value = np.where(s.not_applicable, np.nan, value)
    degenerate = np.zeros(value.shape, dtype=bool)
    if s.successes is not None and interval in PROPORTION_METHODS:
        trials = s.n if s.n_effective is None else s.n_effective
        lower, upper = proportion_interval(s.successes, trials, method=interval, confidence=confidence)
        method = interval if s.n_effective is None else f"{interval}_effective_n"
    elif s.boot is not None:
        lower, upper, degenerate = bootstrap_interval(value, s.boot, s.n if s.units is None else s.units,
                                                      confidence=confidence)
        method = "bootstrap_percentile"
    else:
        lower = upper = np.full(value.shape, np.nan)
        method = "none"
    rows, undefined = [], []
    for g, label in enumerate(grouping.labels):
        not_applicable = s.not_applicable is not None and bool(s.not_applicable[g])
        if np.isnan(value[g]) and not not_applicable:
            undefined.append(f"{s.metric}{'[' + s.cls + ']' if s.cls else ''} for {grouping.name}={label}")
        row = {
            "grouping": grouping.name, "group": label, "metric": s.metric, "class": s.cls, "value": value[g],
            "lower": np.nan if not_applicable else lower[g], "upper": np.nan if not_applicable else upper[g],
            "n": int(s.n[g]),
            "interval": "not_applicable" if not_applicable else (
                f"{method}_degenerate_wilson" if degenerate[g] else method),
            "small_group": bool(s.n[g] < min_group_size),
        }
        if s.n_effective is not None:
            row["n_effective"] = float(s.n_effective[g])
        rows.append(row)
    return rows, undefined


def disparity_rows(s: MetricSeries, grouping: Grouping, *, reference: str | None, confidence: float,
                   min_group_size: int) -> list[dict]:
    """Disparity rows for one metric over one grouping, each with intervals and (where testable) a test.

    Kinds: ``between_groups`` (max vs min), ``to_overall`` (each group vs the
    population; tested against the rest of the population, since the overall
    figure contains the group, and only where the grouping has no reference
    group and at least 3 groups), ``to_overall_max`` (fairlearn's
    ``to_overall`` aggregate: the largest gap, not tested itself) and
    ``to_reference``.

    The two aggregates, max - min and the largest gap to overall, get no
    interval: the bootstrap distribution of a maximum over groups is pushed
    away from 0, so its interval excludes 0 even when every group has the
    same truth. Their evidence is the test (max - min: the test of the max
    and min pair, Bonferroni-adjusted over all pairs, or an omnibus test).

    A test may return a third item, ``rerun(n_perm) -> p``: a permutation
    test that :func:`assemble` reruns with more permutations when its p-value
    sits at the permutation floor and the family is large.
    """
    from scipy.stats import norm  # lazy (see audit.stats)
    labels, n, boot = grouping.labels, s.n, s.boot
    value = s.value if s.not_applicable is None else np.where(s.not_applicable, np.nan, s.value)
    small = n < min_group_size
    defined = ~np.isnan(value)
    rows = []

    units = n if s.units is None else s.units
    overall_units = float(np.nansum(units)) if s.units is not None else s.overall_n

    def floor_sd(g, other_value, other_units):
        """Standard error of a difference from the [0, 1] variance bound of both sides (audit.stats._clustered)."""
        return float(np.sqrt(floor_variance(value[g], units[g], confidence=confidence)
                             + floor_variance(other_value, other_units, confidence=confidence)))

    def row(kind, group, other, diff, diff_boot, rat, rat_boot, n_group, n_other, test, is_small, floor=None):
        dl, du = percentile_interval(diff_boot, confidence=confidence) if diff_boot is not None else (np.nan, np.nan)
        if floor is not None and np.isfinite(diff) and not du > dl:
            # every resample gave the same difference (both groups without error, say): the bound instead
            z = norm.ppf(0.5 + confidence / 2)
            dl, du = diff - z * floor, diff + z * floor
        rl, ru = percentile_interval(rat_boot, confidence=confidence) if rat_boot is not None else (np.nan, np.nan)
        p, test_name, rerun = (*test, None)[:3] if test is not None else (float("nan"), "none", None)
        return {
            "grouping": grouping.name, "metric": s.metric, "class": s.cls, "kind": kind, "group": group,
            "other": other, "difference": float(diff), "difference_lower": float(dl), "difference_upper": float(du),
            "ratio": float(rat), "ratio_lower": float(rl), "ratio_upper": float(ru), "n_group": int(n_group),
            "n_other": int(n_other), "test": test_name, "p_value": p, "small_group": bool(is_small),
            "_rerun": rerun,
        }

    with_overall = boot is not None and s.overall_boot is not None
    finite = value[np.isfinite(value)]
    bounded = bool(finite.size) and bool(((finite >= 0) & (finite <= 1)).all())
    if defined.sum() >= 2:
        hi = int(np.nanargmax(value))
        # the minimum among the *other* groups, so that equal values never compare a group with itself
        others = np.where(np.arange(value.size) == hi, np.nan, value)
        lo = int(np.nanargmin(others))
        rows.append(row(
            "between_groups", labels[hi], labels[lo], value[hi] - value[lo], None,
            fold(value[hi], value[lo]), None, n[hi], n[lo],
            s.range_test(hi, lo) if s.range_test else None, small[hi] or small[lo],
        ))
        gaps = np.abs(value - s.overall_value)
        folds = np.maximum(fold(value, s.overall_value), fold(s.overall_value, value))
        worst = int(np.nanargmax(gaps)) if np.isfinite(gaps).any() else hi
        rows.append(row(
            "to_overall_max", labels[worst], ALL, gaps[worst], None, float(_quiet_nanmax(folds)), None,
            n[worst], s.overall_n, None, small[defined].any(),
        ))
    # Each group is tested against the declared reference group; where none is declared, against the rest of the
    # population, but only with 3 or more groups: with 2, "a vs the rest" and "b vs the rest" are the max - min
    # test again, and testing one comparison three times only inflates the family.
    test_to_overall = reference is None and defined.sum() >= 3
    for g, label in enumerate(labels):
        if not defined[g]:
            continue
        rows.append(row(
            "to_overall", label, ALL, value[g] - s.overall_value,
            boot[:, g] - s.overall_boot if with_overall else None, fold(value[g], s.overall_value),
            fold(boot[:, g], s.overall_boot) if with_overall else None, n[g], s.overall_n,
            s.pair_test(g, None) if s.pair_test and test_to_overall else None, small[g],
            floor=floor_sd(g, s.overall_value, overall_units) if with_overall and bounded else None,
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
                floor=floor_sd(g, value[r], units[r]) if boot is not None and bounded else None,
            ))
    return rows


def assemble(*, metric_rows, disparity_rows_, group_rows, reliability, config, undefined, correction, alpha,
             tests: str) -> GroupedMetrics:
    """Adjust the whole family of p-values, warn about undefined values and build the result.

    A permutation p-value cannot go below ``1 / (B + 1)``, and Holm multiplies
    the smallest p-value by the family size ``m``: with ``m / alpha`` above
    ``B`` nothing could ever be flagged. So every permutation test whose
    p-value sits within ten hits of its floor is rerun, before the
    adjustment, with up to ``B = 10 m / alpha`` permutations (at most
    100,000; stopping early once 50 null statistics reach the observed one).
    """
    reruns = [r.pop("_rerun", None) for r in disparity_rows_]
    disparities = pd.DataFrame(disparity_rows_, columns=DISPARITY_COLUMNS)
    p_values = disparities["p_value"].to_numpy(dtype=float, copy=True)
    family = int(np.isfinite(p_values).sum())
    needed = min(MAX_PERMUTATIONS, int(np.ceil(PERMUTATIONS_PER_FAMILY_TEST * family / alpha)))
    # only p-values within a few hits of the floor need more permutations to be adjusted honestly
    near_floor = min(alpha, NEAR_FLOOR_HITS / (config.get("n_perm", np.inf) + 1))
    for i, rerun in enumerate(reruns):
        if rerun is not None and np.isfinite(p_values[i]) and p_values[i] <= near_floor and needed > config.get("n_perm", 0):
            p_values[i] = rerun(needed)
    disparities["p_value"] = p_values
    for method in CORRECTIONS:
        adjusted, reject = adjust_p_values(p_values, method=method, alpha=alpha)
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
