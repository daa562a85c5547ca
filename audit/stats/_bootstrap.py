"""Resampling on sufficient statistics.

A rate metric depends on the rows only through the counts in each (cell,
confusion cell) bin, so resampling N rows with replacement is exactly a
multinomial draw over those bins. The draw costs O(bins) per replicate instead
of O(rows).

For correlated units (boxes in an image, pixels in a mask) resample whole
units: :func:`cluster_bootstrap` draws unit weights and sums weighted per-unit
statistics with one matrix product.
"""

from __future__ import annotations

import numpy as np

from ..errors import StatsInputError

__all__ = ["multinomial_bootstrap", "cluster_weights", "cluster_bootstrap"]

_KINDS = ("plain", "stratified")


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def multinomial_bootstrap(counts: np.ndarray, *, n_boot: int, seed=0, kind: str = "plain") -> np.ndarray:
    """Bootstrap replicates of a table of counts.

    Parameters
    ----------
    counts : ndarray of shape (n_strata, n_bins)
        Row ``s`` holds the counts of stratum ``s`` (a finest group) over its
        bins (confusion cells).
    n_boot : int
        Number of replicates.
    seed : int or numpy.random.Generator
        Seed, for reproducible replicates.
    kind : {"plain", "stratified"}
        ``plain`` resamples all N units at once (group sizes vary, as they do
        under row resampling); ``stratified`` keeps each stratum's size.

    Returns
    -------
    ndarray of shape (n_boot, n_strata, n_bins)
    """
    if kind not in _KINDS:
        raise StatsInputError(f"expected bootstrap kind in {list(_KINDS)}, found '{kind}'")
    if n_boot < 0:
        raise StatsInputError(f"expected n_boot >= 0, found {n_boot}")
    counts = np.asarray(counts, dtype=np.int64)
    rng = _rng(seed)
    n_strata, n_bins = counts.shape
    if kind == "plain":
        total = int(counts.sum())
        if total == 0:
            return np.zeros((n_boot, n_strata, n_bins), dtype=np.int64)
        flat = rng.multinomial(total, counts.ravel() / total, size=n_boot)
        return flat.reshape(n_boot, n_strata, n_bins)
    out = np.zeros((n_boot, n_strata, n_bins), dtype=np.int64)
    for stratum in range(n_strata):
        size = int(counts[stratum].sum())
        if size:
            out[:, stratum, :] = rng.multinomial(size, counts[stratum] / size, size=n_boot)
    return out


def cluster_weights(n_units: int, *, n_boot: int, seed=0, method: str = "multinomial", strata=None) -> np.ndarray:
    """Resampling weights for whole units (images), shape ``(n_boot, n_units)``.

    ``multinomial`` reproduces resampling ``n_units`` units with replacement (or
    within each stratum when ``strata`` gives each unit's stratum). ``poisson``
    draws independent Poisson(1) weights, which need no global count and so
    suit streaming and sharded runs.
    """
    rng = _rng(seed)
    if method == "poisson":
        return rng.poisson(1.0, size=(n_boot, n_units)).astype(float)
    if method != "multinomial":
        raise StatsInputError(f"expected cluster weight method 'multinomial' or 'poisson', found '{method}'")
    if n_units == 0:
        return np.zeros((n_boot, 0))
    if strata is None:
        return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)
    strata = np.asarray(strata)
    weights = np.zeros((n_boot, n_units))
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        weights[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=n_boot)
    return weights


def cluster_bootstrap(unit_stats: np.ndarray, *, n_boot: int, seed=0, method: str = "multinomial", strata=None) -> np.ndarray:
    """Replicates of the column sums of per-unit statistics under unit resampling.

    Parameters
    ----------
    unit_stats : ndarray of shape (n_units, n_stats)
        Additive statistics of each unit, e.g. matched and total ground truth
        per group and IoU threshold for an image, or intersection and union per
        class and group.

    Returns
    -------
    ndarray of shape (n_boot, n_stats)
        ``weights @ unit_stats``.
    """
    unit_stats = np.asarray(unit_stats, dtype=float)
    weights = cluster_weights(unit_stats.shape[0], n_boot=n_boot, seed=seed, method=method, strata=strata)
    return weights @ unit_stats
