"""Tests for group comparisons and multiplicity control over an audit's family of tests."""

from __future__ import annotations

import numpy as np
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from ..errors import StatsInputError

__all__ = [
    "two_proportion_test",
    "permutation_range_test",
    "permutation_pair_test_cells",
    "adjust_p_values",
    "CORRECTIONS",
]

# our name -> statsmodels' name
CORRECTIONS = {"fdr_bh": "fdr_bh", "holm": "holm"}
# Cochran's rule: the z-test is used only when every expected cell count is at least this.
MIN_EXPECTED_FOR_Z = 5.0


def two_proportion_test(k1: float, n1: float, k2: float, n2: float) -> tuple[float, str]:
    """Two-sided test of equal proportions ``k1/n1 == k2/n2``.

    Fisher's exact test when any expected count of the 2x2 table is below 5,
    otherwise the pooled two-proportion z-test. Returns ``(p_value, test name)``;
    the p-value is NaN when either sample is empty.
    """
    if n1 <= 0 or n2 <= 0:
        return float("nan"), "none"
    total = n1 + n2
    successes = k1 + k2
    expected = np.outer([n1, n2], [successes, total - successes]) / total
    if expected.min() < MIN_EXPECTED_FOR_Z:
        table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=np.int64)
        return float(fisher_exact(table).pvalue), "fisher_exact"
    _, p = proportions_ztest(np.array([k1, k2]), np.array([n1, n2]))
    return float(p), "z_test"


def _p_from_null(observed: float, null: np.ndarray) -> float:
    """Monte-Carlo p-value ``(1 + #{null >= observed}) / (1 + n)`` with a float tolerance."""
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + null.size))


def permutation_range_test(successes, trials, *, n_perm: int, rng: np.random.Generator) -> float:
    """Permutation test of ``max - min`` of per-group proportions.

    Under the null the group labels are exchangeable among the pooled units, so
    the successes fall into the groups as a multivariate hypergeometric draw
    with the group sizes fixed; no rows are touched. Groups with no trials are
    left out.
    """
    successes = np.asarray(successes, dtype=np.int64)
    trials = np.asarray(trials, dtype=np.int64)
    keep = trials > 0
    successes, trials = successes[keep], trials[keep]
    if keep.sum() < 2:
        return float("nan")
    rates = successes / trials
    observed = rates.max() - rates.min()
    draws = rng.multivariate_hypergeometric(trials, int(successes.sum()), size=n_perm)
    null_rates = draws / trials
    return _p_from_null(observed, null_rates.max(1) - null_rates.min(1))


def permutation_pair_test_cells(cells_a, cells_b, statistic, *, n_perm: int, rng: np.random.Generator) -> float:
    """Permutation test of ``|statistic(a) - statistic(b)|`` for count-based metrics.

    ``cells_a`` and ``cells_b`` are the two groups' counts over the same
    cells; ``statistic`` maps an array of shape ``(..., n_cells)`` to
    ``(...)``. Group a's counts under the null are a multivariate
    hypergeometric draw of its size from the pooled counts.
    """
    cells_a = np.asarray(cells_a, dtype=np.int64).ravel()
    cells_b = np.asarray(cells_b, dtype=np.int64).ravel()
    if cells_a.sum() == 0 or cells_b.sum() == 0:
        return float("nan")
    observed = abs(float(statistic(cells_a) - statistic(cells_b)))
    pooled = cells_a + cells_b
    draws = rng.multivariate_hypergeometric(pooled, int(cells_a.sum()), size=n_perm)
    null = np.abs(statistic(draws) - statistic(pooled[None, :] - draws))
    return _p_from_null(observed, null)


def permuted_group_counts(counts, *, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Group x cell counts after randomly permuting group labels over the pooled units.

    Group sizes and cell totals are kept. Group ``g`` takes a multivariate
    hypergeometric draw of its size from what the earlier groups left, drawn
    cell by cell as univariate hypergeometrics so that every call is
    vectorised over the permutations.

    Parameters
    ----------
    counts : ndarray of shape (G, K)

    Returns
    -------
    ndarray of shape (n_perm, G, K)
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_groups, n_cells = counts.shape
    remaining = np.broadcast_to(counts.sum(0), (n_perm, n_cells)).copy()
    out = np.zeros((n_perm, n_groups, n_cells), dtype=np.int64)
    for g in range(n_groups - 1):
        wanted = np.full(n_perm, counts[g].sum())
        left_after = remaining[:, ::-1].cumsum(1)[:, ::-1]  # units in cells k.. of the pool
        for k in range(n_cells - 1):
            bad = left_after[:, k + 1]
            draw = rng.hypergeometric(remaining[:, k], bad, wanted) if wanted.any() else np.zeros(n_perm, np.int64)
            out[:, g, k] = draw
            wanted = wanted - draw
        out[:, g, n_cells - 1] = wanted
        remaining -= out[:, g]
    out[:, n_groups - 1] = remaining
    return out


def adjust_p_values(p_values, *, method: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Adjust a family of p-values; NaN p-values are left out of the family.

    Returns adjusted p-values and rejection flags (False where the p-value is NaN).
    """
    if method not in CORRECTIONS:
        raise StatsInputError(f"expected correction in {sorted(CORRECTIONS)}, found '{method}'")
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    reject = np.zeros(p_values.shape, dtype=bool)
    tested = np.isfinite(p_values)
    if tested.any():
        rej, adj, _, _ = multipletests(p_values[tested], alpha=alpha, method=CORRECTIONS[method])
        adjusted[tested] = adj
        reject[tested] = rej
    return adjusted, reject
