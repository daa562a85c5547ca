"""Confidence intervals: exact and score intervals for proportions, bootstrap percentiles."""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from ..errors import StatsInputError

__all__ = ["proportion_interval", "percentile_interval", "PROPORTION_METHODS"]

# our name -> statsmodels' name
PROPORTION_METHODS = {"wilson": "wilson", "clopper-pearson": "beta"}


def proportion_interval(successes, trials, *, method: str = "wilson", confidence: float = 0.95):
    """Interval for ``successes / trials``, elementwise; NaN where ``trials`` is 0.

    Parameters
    ----------
    successes, trials : array-like
        Counts of the same shape.
    method : {"wilson", "clopper-pearson"}
        Wilson score interval, or the exact (conservative) Clopper-Pearson
        interval, both from ``statsmodels.stats.proportion.proportion_confint``.
    confidence : float
        Coverage level, e.g. 0.95.
    """
    if method not in PROPORTION_METHODS:
        raise StatsInputError(
            f"expected interval method in {sorted(PROPORTION_METHODS)}, found '{method}'"
        )
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    defined = trials > 0
    safe_trials = np.where(defined, trials, 1.0)
    safe_successes = np.where(defined, successes, 0.0)
    lower, upper = proportion_confint(
        safe_successes, safe_trials, alpha=1.0 - confidence, method=PROPORTION_METHODS[method]
    )
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
