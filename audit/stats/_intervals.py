"""Confidence intervals: exact and score intervals for proportions, bootstrap percentiles."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import StatsInputError

__all__ = ["proportion_interval", "percentile_interval", "bootstrap_interval", "PROPORTION_METHODS"]

# our name -> statsmodels' name
PROPORTION_METHODS = {"wilson": "wilson", "clopper-pearson": "beta"}


def proportion_interval(successes, trials, *, method: str = "wilson", confidence: float = 0.95):
    """Interval for ``successes / trials``, elementwise; NaN where ``trials`` is 0.

    Parameters
    ----------
    successes, trials : array-like
        Counts of the same shape; effective (non-integer) counts are allowed.
    method : {"wilson", "clopper-pearson"}
        The Wilson score interval, or the exact (conservative) Clopper-Pearson
        interval, both from ``statsmodels.stats.proportion.proportion_confint``.
        Wilson's bound next to 0 (or n) is too tight when only 1 to 3 successes
        (or failures) were seen, and its coverage drops to 0.90 at p = 0.999,
        n = 100. There, as Brown, Cai & DasGupta (2001, Stat. Sci. 16:101)
        propose, the bound is replaced by the exact Poisson bound
        ``chi2.ppf(alpha / 2, 2 x) / (2 n)`` (for ``x <= 2`` when ``n <= 50``,
        ``x <= 3`` otherwise).
    confidence : float
        Coverage level, e.g. 0.95.
    """
    from scipy.stats import chi2  # lazy (see audit.stats)
    from statsmodels.stats.proportion import proportion_confint
    if method not in PROPORTION_METHODS:
        raise StatsInputError(
            f"expected interval method in {sorted(PROPORTION_METHODS)}, found '{method}'"
        )
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    defined = trials > 0
    safe_trials = np.where(defined, trials, 1.0)
    safe_successes = np.clip(np.where(defined, successes, 0.0), 0.0, safe_trials)
    lower, upper = proportion_confint(
        safe_successes, safe_trials, alpha=1.0 - confidence, method=PROPORTION_METHODS[method]
    )
    if method == "wilson":
        few = np.where(safe_trials <= 50, 2.0, 3.0)
        tail = (1.0 - confidence) / 2.0
        failures = safe_trials - safe_successes
        with np.errstate(invalid="ignore"):
            poisson_lower = chi2.ppf(tail, 2 * safe_successes) / (2 * safe_trials)
            poisson_upper = 1.0 - chi2.ppf(tail, 2 * failures) / (2 * safe_trials)
        lower = np.where((safe_successes > 0) & (safe_successes <= few), np.fmin(lower, poisson_lower), lower)
        upper = np.where((failures > 0) & (failures <= few), np.fmax(upper, poisson_upper), upper)
    lower = np.where(defined, np.clip(lower, 0.0, 1.0), np.nan)
    upper = np.where(defined, np.clip(upper, 0.0, 1.0), np.nan)
    return lower, upper


def percentile_interval(replicates: np.ndarray, *, confidence: float = 0.95):
    """Percentile bootstrap interval over axis 0, ignoring undefined (NaN) replicates.

    Where more than half the replicates are undefined the interval is NaN.
    """
    replicates = np.asarray(replicates, dtype=float)
    if replicates.shape[0] == 0:
        nan = np.full(replicates.shape[1:], np.nan)
        return nan, nan.copy()
    tail = (1.0 - confidence) / 2.0
    # NaN replicates are undefined; inf (a ratio over a zero) is a legitimate, unbounded value
    enough = (~np.isnan(replicates)).mean(axis=0) >= 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower, upper = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return np.where(enough, lower, np.nan), np.where(enough, upper, np.nan)


def bootstrap_interval(value, replicates, units, *, confidence: float = 0.95):
    """Percentile interval of a [0, 1]-valued metric that never collapses to a point.

    Where every defined replicate is equal (all units of a group alike, or a
    single resampling unit), the bootstrap sees no variance and its interval
    has zero width whatever the group's size. There the interval falls back to
    the Wilson interval of the value on the group's ``units`` resampling units:
    the widest a mean of [0, 1] values over that many units can need.

    Returns
    -------
    lower, upper : ndarray of shape (G,)
    degenerate : ndarray of bool, shape (G,)
        Where the fallback was used.
    """
    value = np.asarray(value, dtype=float)
    lower, upper = percentile_interval(replicates, confidence=confidence)
    units = np.asarray(units, dtype=float)
    bounded = np.isfinite(value) & (value >= 0) & (value <= 1) & (units > 0)
    degenerate = bounded & ~(upper > lower)
    if degenerate.any():
        floor_lower, floor_upper = proportion_interval(
            np.where(bounded, value, 0) * units, units, method="wilson", confidence=confidence
        )
        lower = np.where(degenerate, floor_lower, lower)
        upper = np.where(degenerate, floor_upper, upper)
    return lower, upper, degenerate
