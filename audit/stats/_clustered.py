"""Proportions of clustered 0/1 units: design effects, effective sample sizes and tests that hold near 0 and 1.

People share images, so a group's recall is a ratio of sums over images, and
its variance is larger than a binomial one on the same number of people. The
ratio's linearised (Taylor) variance over clusters gives the design effect

    deff = Var_cluster(p) / (p (1 - p) / n),

floored at 1 so that no interval is narrower than in the independent case.
Korn & Graubard (1998), as R's ``survey::svyciprop(method = "beta")`` does,
then treat the group as ``n_eff = n / deff`` independent units with
``x_eff = p * n_eff`` successes, shrunk further by ``(z / t_{m-1})^2`` for the
``m - 1`` degrees of freedom of ``m`` clusters. A Wilson or Clopper-Pearson
interval on those effective counts never has zero width, and a two-proportion
test on them has a pooled variance that is 0 only when both groups are all
successes or all failures (and then the difference is 0 too, p = 1).

Where the variance cannot be estimated, the design effect takes its bound:

- a group in a single cluster: every unit may share one outcome, so the
  group counts as one unit (``deff = n``);
- ``p`` of exactly 0 or 1: the estimated variance is 0, so ``deff = 1``
  (the independent case), as the reference above prescribes.

All of this is pure numpy/scipy; the proportion step itself is statsmodels'
``proportion_confint`` in :mod:`._intervals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EffectiveSize", "effective_size", "floor_variance"]


@dataclass(frozen=True)
class EffectiveSize:
    """A clustered proportion reduced to effective independent counts (arrays over groups)."""

    n: np.ndarray  # units (people) with a defined outcome
    successes: np.ndarray  # their successes
    clusters: np.ndarray  # clusters (images) holding at least one unit
    design_effect: np.ndarray  # >= 1; NaN where n is 0
    n_effective: np.ndarray  # n / deff, shrunk for the clusters' degrees of freedom
    successes_effective: np.ndarray  # p * n_effective


def effective_size(successes, trials, cluster, member, *, n_clusters: int, confidence: float = 0.95,
                   clustered: bool = True) -> EffectiveSize:
    """Design effects and effective counts of a 0/1 proportion in each group.

    Parameters
    ----------
    successes, trials : ndarray of shape (U,)
        Per resampling-unit-and-cell sums (e.g. people found and people, per
        image and finest cell).
    cluster : ndarray of int, shape (U,)
        The cluster (image) of each entry, ``0 .. n_clusters - 1``.
    member : ndarray of bool, shape (U, G)
        Which groups each entry counts towards.
    clustered : bool
        False when every unit is its own cluster: the design effect is then 1.

    Returns
    -------
    EffectiveSize
    """
    from scipy.stats import norm  # lazy (see audit.stats)
    from scipy.stats import t as student_t
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    member = np.asarray(member, dtype=bool)
    n_groups = member.shape[1]
    out = {k: np.zeros(n_groups) for k in ("n", "successes", "clusters", "design_effect", "n_effective")}
    z = norm.ppf(0.5 + confidence / 2)
    for g in range(n_groups):
        rows = member[:, g]
        y = np.bincount(cluster[rows], successes[rows], minlength=n_clusters)
        x = np.bincount(cluster[rows], trials[rows], minlength=n_clusters)
        present = x > 0
        y, x = y[present], x[present]
        n, k, m = x.sum(), y.sum(), int(present.sum())
        deff, shrink = np.nan, 1.0
        if n > 0:
            p = k / n
            if not clustered:
                deff = 1.0
            elif m < 2:
                deff = n  # one image: its people may all share one outcome
            elif p <= 0 or p >= 1:
                deff = 1.0
            else:
                v_cluster = m / (m - 1) * np.sum((y - p * x) ** 2) / n**2
                deff = max(1.0, v_cluster / (p * (1 - p) / n))
            if clustered and m >= 2:
                shrink = (z / student_t.ppf(0.5 + confidence / 2, m - 1)) ** 2
        out["n"][g], out["successes"][g], out["clusters"][g] = n, k, m
        out["design_effect"][g] = deff
        out["n_effective"][g] = n / deff * shrink if n > 0 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(out["n"] > 0, out["successes"] / np.where(out["n"] > 0, out["n"], 1), 0.0)
    return EffectiveSize(
        n=out["n"], successes=out["successes"], clusters=out["clusters"], design_effect=out["design_effect"],
        n_effective=out["n_effective"], successes_effective=rate * out["n_effective"],
    )


def floor_variance(value, units, *, confidence: float = 0.95):
    """The variance a [0, 1]-valued mean over ``units`` units can have at most, Agresti-Coull style.

    Used where a bootstrap cannot see any variance (every resample equal): the
    bound ``p (1 - p) / n`` of a mean of [0, 1] values, with ``z^2 / 2``
    pseudo-successes and pseudo-failures so that it is positive at 0 and 1.
    """
    from scipy.stats import norm  # lazy (see audit.stats)
    z2 = norm.ppf(0.5 + confidence / 2) ** 2
    value = np.clip(np.nan_to_num(np.asarray(value, dtype=float)), 0.0, 1.0)
    units = np.asarray(units, dtype=float)
    n_tilde = units + z2
    p_tilde = (value * units + z2 / 2) / n_tilde
    return p_tilde * (1 - p_tilde) / n_tilde
