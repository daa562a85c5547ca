"""Mantel-Haenszel pooling of a two-group disparity over strata, and its tests.

A stratified 2 x 2 x K table holds, for each stratum ``k`` (a combination of
covariate levels), the outcome counts of the compared group (row 0) and the
reference group (row 1); column 0 counts outcome 1 (an error or a miss),
column 1 outcome 0. This is statsmodels' ``StratifiedTable`` layout, with
``a, b`` the group's errors and non-errors and ``c, d`` the reference's.

- The pooled odds ratio, its interval, the Cochran-Mantel-Haenszel test and the
  Breslow-Day test are statsmodels' (``StratifiedTable``), used as they are.
- The pooled risk ratio is statsmodels' ``riskratio_pooled``; statsmodels has no
  interval for it, so its log variance is Greenland & Robins' (1985,
  Biometrics 41:55)::

      Var(log RR) = sum((n1 n0 m1 - a c N) / N^2) / (sum(a n0 / N) sum(c n1 / N))

- statsmodels has no Mantel-Haenszel risk difference. It is Greenland &
  Robins' weighted mean of the stratum differences with weights
  ``w = n1 n0 / N``, and its variance is Sato's (1989, Biometrics 45:1323),
  consistent both for many sparse strata and for few large ones::

      RD = sum(w (a / n1 - c / n0)) / sum(w)
      Var(RD) = (RD sum(P) + sum(Q)) / sum(w)^2
      P = (n1^2 c - n0^2 a + n1 n0 (n0 - n1) / 2) / N^2
      Q = (a (n0 - c) + c (n1 - a)) / (2 N)

  With one stratum both reduce to the crude difference and the binomial
  variance ``pA (1 - pA) / n1 + pB (1 - pB) / n0``; ``tests/test_stats_stratified.py``
  checks that, a hand computation and the large-strata Greenland-Robins variance.

Strata holding only one of the two groups carry no comparison; the caller
leaves them out (and names them). Strata where everyone has the same outcome
add nothing to the odds-ratio figures and make the Breslow-Day expectation
undefined, so the odds-ratio figures use only the others (their values are
unchanged by that); the risk difference keeps them, as its weights do not
depend on the outcome.

People share images. The tests and the log-scale intervals are then divided
(or widened) by a design effect estimated by linearisation over the clusters,
floored at 1 (a first-order Rao-Scott correction): see :func:`design_effect`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from statsmodels.stats.contingency_tables import StratifiedTable

__all__ = ["mh_risk_difference", "mh_risk_ratio", "mh_summary", "design_effect", "linearised_contributions"]


def _cells(tables):
    tables = np.asarray(tables, dtype=float)
    a, b, c, d = tables[..., 0, 0], tables[..., 0, 1], tables[..., 1, 0], tables[..., 1, 1]
    return a, b, c, d, a + b, c + d, a + b + c + d


def mh_risk_difference(tables) -> np.ndarray:
    """Mantel-Haenszel risk difference of tables of shape ``(..., K, 2, 2)``; NaN where no stratum holds both groups."""
    a, _, c, _, n1, n0, n = _cells(tables)
    safe = np.where(n > 0, n, 1.0)
    weight = np.where(n > 0, n1 * n0 / safe, 0.0)
    numerator = np.where(n > 0, (a * n0 - c * n1) / safe, 0.0).sum(-1)
    total = weight.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, numerator / np.where(total > 0, total, 1.0), np.nan)


def mh_risk_ratio(tables) -> np.ndarray:
    """Mantel-Haenszel risk ratio (statsmodels' ``riskratio_pooled``), vectorised over leading axes."""
    a, _, c, _, n1, n0, n = _cells(tables)
    safe = np.where(n > 0, n, 1.0)
    top = np.where(n > 0, a * n0 / safe, 0.0).sum(-1)
    bottom = np.where(n > 0, c * n1 / safe, 0.0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((top > 0) | (bottom > 0), top / bottom, np.nan)


def _sato_variance(tables, rd: float) -> float:
    a, _, c, _, n1, n0, n = _cells(tables)
    p = (n1**2 * c - n0**2 * a + n1 * n0 * (n0 - n1) / 2) / n**2
    q = (a * (n0 - c) + c * (n1 - a)) / (2 * n)
    return float((rd * p.sum() + q.sum()) / np.sum(n1 * n0 / n) ** 2)


def _log_rr_variance(tables) -> float:
    a, _, c, _, n1, n0, n = _cells(tables)
    numerator = np.sum((n1 * n0 * (a + c) - a * c * n) / n**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(numerator / (np.sum(a * n0 / n) * np.sum(c * n1 / n)))


def _breslow_day(table: StratifiedTable):
    """statsmodels' Breslow-Day test; at a pooled odds ratio of exactly 1 its quadratic is linear."""
    from scipy.stats import chi2  # lazy (see audit.stats)
    if table.oddsratio_pooled != 1.0:
        result = table.test_equal_odds(adjust=False)
        return float(result.statistic), float(result.pvalue)
    t = table.table
    e11 = t[0].sum(0) * t[:, 0].sum(0) / t.sum((0, 1))  # the root of the linear equation
    v11 = 1 / (1 / e11 + 1 / (t[:, 0].sum(0) - e11) + 1 / (t[0].sum(0) - e11) + 1 / (t[1, 1] - t[0, 0] + e11))
    statistic = float(np.sum((t[0, 0] - e11) ** 2 / v11))
    return statistic, float(chi2.sf(statistic, t.shape[2] - 1))


def mh_summary(tables, *, confidence: float = 0.95, deff: float = 1.0, deff_null: float = 1.0) -> dict:
    """Every Mantel-Haenszel figure of one stratified table.

    Parameters
    ----------
    tables : ndarray of shape (K, 2, 2)
        Strata holding both groups.
    deff, deff_null : float
        Design effects (>= 1) of the pooled contrast, centred at the estimate
        and under no association: the log-scale variances are multiplied by
        ``deff``, the CMH statistic divided by ``deff_null`` and the
        Breslow-Day statistic by ``deff``.

    Returns
    -------
    dict
        ``rd`` and ``rd_se``; ``rr``, ``rr_lower``, ``rr_upper``; ``odds_ratio``,
        ``odds_ratio_lower``, ``odds_ratio_upper``; ``cmh_statistic``,
        ``cmh_p``; ``breslow_day_statistic``, ``breslow_day_p``,
        ``breslow_day_strata``. NaN where undefined, never a p-value of 0 from
        a zero variance.
    """
    from scipy.stats import chi2  # lazy (see audit.stats)
    from scipy.stats import norm
    from statsmodels.stats.contingency_tables import StratifiedTable
    tables = np.asarray(tables, dtype=float).reshape(-1, 2, 2)
    nan = float("nan")
    out = dict.fromkeys(("rd", "rd_se", "rr", "rr_lower", "rr_upper", "odds_ratio", "odds_ratio_lower",
                         "odds_ratio_upper", "cmh_statistic", "cmh_p", "breslow_day_statistic", "breslow_day_p"), nan)
    out["breslow_day_strata"] = 0
    if tables.shape[0] == 0:
        return out
    z = norm.ppf(0.5 + confidence / 2)
    rd = float(mh_risk_difference(tables))
    out["rd"] = rd
    variance = _sato_variance(tables, rd) * deff
    out["rd_se"] = float(np.sqrt(variance)) if variance > 0 else nan
    rr = float(mh_risk_ratio(tables))
    out["rr"] = rr
    log_var = _log_rr_variance(tables) * deff
    if np.isfinite(rr) and rr > 0 and np.isfinite(log_var) and log_var > 0:
        half = z * np.sqrt(log_var)
        out["rr_lower"], out["rr_upper"] = float(rr * np.exp(-half)), float(rr * np.exp(half))
    # odds-ratio figures: strata with both outcomes (the others add 0 to every sum but break Breslow-Day)
    column = tables.sum(1)  # (K, 2): errors and non-errors of the stratum
    informative = tables[(column > 0).all(1)]
    if informative.shape[0] == 0:
        return out
    table = StratifiedTable(np.moveaxis(informative, 0, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        odds_ratio = float(table.oddsratio_pooled)
        out["odds_ratio"] = odds_ratio
        if np.isfinite(odds_ratio) and odds_ratio > 0:
            log_se = float(table.logodds_pooled_se) * np.sqrt(deff)
            log_or = np.log(odds_ratio)
            out["odds_ratio_lower"] = float(np.exp(log_or - z * log_se))
            out["odds_ratio_upper"] = float(np.exp(log_or + z * log_se))
        cmh = table.test_null_odds(correction=False)
        statistic = float(cmh.statistic) / deff_null
        if np.isfinite(statistic):
            out["cmh_statistic"], out["cmh_p"] = statistic, float(chi2.sf(statistic, 1))
        if informative.shape[0] >= 2 and np.isfinite(odds_ratio) and odds_ratio > 0:
            statistic, _ = _breslow_day(table)
            statistic /= deff
            if np.isfinite(statistic):
                out["breslow_day_statistic"] = statistic
                out["breslow_day_p"] = float(chi2.sf(statistic, informative.shape[0] - 1))
                out["breslow_day_strata"] = int(informative.shape[0])
    return out


def linearised_contributions(y, in_group, stratum, tables, *, null: bool) -> np.ndarray:
    """Each person's share of the pooled contrast ``sum_k (a n0 - c n1) / N``.

    The contrast is ``sum_k w_k (pA_k - pB_k)``, the numerator of the risk
    difference and of the CMH statistic. Person ``j`` of stratum ``k``
    contributes ``n0/N (y - pA_k)`` in the group and ``-n1/N (y - pB_k)`` in
    the reference (centred at the estimate), or ``(1[group] - n1/N) (y - p_k)``
    with the stratum's pooled rate (``null``: no association). Sums over
    strata give the contrast's deviation exactly.
    """
    a, _, c, _, n1, n0, n = _cells(tables)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_a, rate_b, pooled = a / n1, c / n0, (a + c) / n
    n_k, n1_k, n0_k = n[stratum], n1[stratum], n0[stratum]
    if null:
        return (in_group - n1_k / n_k) * (y - pooled[stratum])
    return np.where(in_group, n0_k / n_k * (y - rate_a[stratum]), -n1_k / n_k * (y - rate_b[stratum]))


def design_effect(contributions, cluster) -> float:
    """Design effect of a sum of per-person contributions under clustering, floored at 1.

    ``Var_cluster = m / (m - 1) sum_c (sum_{j in c} u_j)^2`` over the ``m``
    clusters against ``Var_independent = sum_j u_j^2``. Where the variance is
    0 (every outcome alike) it is 1, the independent case; with a single
    cluster every person may share one outcome and it is the number of people.
    """
    u = np.asarray(contributions, dtype=float)
    if u.size == 0:
        return 1.0
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    m = int(codes.max()) + 1
    if m < 2:
        return float(u.size)
    independent = float(np.sum(u**2))
    if independent <= 0:
        return 1.0
    clustered = m / (m - 1) * float(np.sum(np.bincount(codes, u, minlength=m) ** 2))
    return max(1.0, clustered / independent)
