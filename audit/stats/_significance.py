"""Tests for group comparisons and multiplicity control over an audit's family of tests."""

from __future__ import annotations

import numpy as np

from ..errors import StatsInputError

__all__ = [
    "two_proportion_test",
    "permutation_range_test",
    "permutation_pair_test_cells",
    "monte_carlo_p",
    "STOP_AFTER_HITS",
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
    the p-value is NaN when either sample is empty. Counts may be effective
    (non-integer) counts of clustered units: Fisher's test then takes them
    rounded to the nearest integer, and the z-test as they are. The pooled
    variance is 0 only when both samples are all successes or all failures,
    and then the p-value is 1, never 0.
    """
    from scipy.stats import fisher_exact  # lazy (see audit.stats)
    from statsmodels.stats.proportion import proportions_ztest
    if not (n1 > 0 and n2 > 0):
        return float("nan"), "none"
    total = n1 + n2
    successes = k1 + k2
    expected = np.outer([n1, n2], [successes, total - successes]) / total
    if expected.min() < MIN_EXPECTED_FOR_Z:
        rows = np.rint([n1, n2]).astype(np.int64)
        wins = np.clip(np.rint([k1, k2]).astype(np.int64), 0, rows)
        if rows.min() == 0:
            return 1.0, "fisher_exact"
        table = np.array([[wins[0], rows[0] - wins[0]], [wins[1], rows[1] - wins[1]]], dtype=np.int64)
        return float(fisher_exact(table).pvalue), "fisher_exact"
    _, p = proportions_ztest(np.array([k1, k2], dtype=float), np.array([n1, n2], dtype=float))
    return float(p), "z_test"


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

    def draw_null(k):
        null_rates = rng.multivariate_hypergeometric(trials, int(successes.sum()), size=k) / trials
        return null_rates.max(1) - null_rates.min(1)

    return monte_carlo_p(observed, draw_null, n_perm)


# a rerun with many permutations stops once this many null statistics reach the observed one (Besag & Clifford,
# 1991): the p-value is then known to about 15%, and only p-values near the floor pay for every permutation
STOP_AFTER_HITS = 50


def monte_carlo_p(observed: float, draw_null, n_perm: int, *, chunk: int = 10_000,
                  stop_after_hits: int | None = None) -> float:
    """Monte-Carlo p-value ``(1 + #{null >= observed}) / (1 + n)`` over ``n_perm`` null draws.

    ``draw_null(k)`` returns ``k`` null statistics (NaN for draws where the
    statistic is undefined, which are left out); draws are made in chunks so
    that memory stays flat however many permutations a large family needs.
    With ``stop_after_hits``, drawing stops after the first chunk that brings
    the count of null statistics at least as extreme to that number.
    """
    if not np.isfinite(observed):
        return float("nan")
    hits = total = 0
    for start in range(0, n_perm, chunk):
        null = np.asarray(draw_null(min(chunk, n_perm - start)), dtype=float)
        null = null[np.isfinite(null)]
        hits += int(np.count_nonzero(null >= observed - 1e-12))
        total += null.size
        if stop_after_hits is not None and hits >= stop_after_hits:
            break
    return float((1 + hits) / (1 + total)) if total else float("nan")


def permutation_pair_test_cells(cells_a, cells_b, statistic, *, n_perm: int, rng: np.random.Generator,
                                stop_after_hits: int | None = None) -> float:
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

    def draw_null(k):
        draws = rng.multivariate_hypergeometric(pooled, int(cells_a.sum()), size=k)
        return np.abs(statistic(draws) - statistic(pooled[None, :] - draws))

    return monte_carlo_p(observed, draw_null, n_perm, chunk=min(5_000, max(1, 2_000_000 // pooled.size)),
                         stop_after_hits=stop_after_hits)


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


def _holm(p_values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment: ``max_{j <= i} (m - j + 1) p_(j)``, capped at 1.

    Written out because statsmodels' ``multipletests(method="holm")`` calls
    ``gc.collect()`` on every call, which costs 50 ms or more in a process that
    holds torch, and simulations run thousands of audits;
    ``tests/test_stats_boundary.py`` checks it equals statsmodels'.
    """
    m = p_values.size
    order = np.argsort(p_values, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(p_values[order] * np.arange(m, 0, -1)))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= alpha, adjusted


def adjust_p_values(p_values, *, method: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Adjust a family of p-values; NaN p-values are left out of the family.

    Returns adjusted p-values and rejection flags (False where the p-value is NaN).
    """
    from statsmodels.stats.multitest import multipletests  # lazy (see audit.stats)
    if method not in CORRECTIONS:
        raise StatsInputError(f"expected correction in {sorted(CORRECTIONS)}, found '{method}'")
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    reject = np.zeros(p_values.shape, dtype=bool)
    tested = np.isfinite(p_values)
    if tested.any():
        if method == "holm":
            rej, adj = _holm(p_values[tested], alpha)
        else:
            rej, adj, _, _ = multipletests(p_values[tested], alpha=alpha, method=CORRECTIONS[method])
        adjusted[tested] = adj
        reject[tested] = rej
    return adjusted, reject
