"""Simulation checks of interval coverage and of the false-discovery control. Seeded, so deterministic."""

import numpy as np
import pandas as pd
import pytest

from audit.stats import audit_classification, multinomial_bootstrap, percentile_interval, proportion_interval

N_AUDITS = 2000
LOW, HIGH = 0.935, 0.965


# Wilson coverage oscillates with the true rate at small n (it is 0.930 at p = 0.3, n = 30,
# by exact binomial enumeration), so the check uses two rates where the band is attainable.
@pytest.mark.parametrize("rate", [0.2, 0.4])
@pytest.mark.parametrize("n", [30, 300, 3000])
def test_wilson_and_bootstrap_cover_the_truth(rate, n):
    rng = np.random.default_rng(1000 * n + int(rate * 10))
    successes = rng.binomial(n, rate, N_AUDITS)
    lower, upper = proportion_interval(successes, np.full(N_AUDITS, n), method="wilson")
    wilson = np.mean((lower <= rate) & (rate <= upper))
    covered = 0
    for k in successes:
        # the engine's count bootstrap: one stratum with cells (success, failure)
        draws = multinomial_bootstrap(np.array([[k, n - k]]), n_boot=1000, seed=rng)[:, 0, 0] / n
        lo, hi = percentile_interval(draws)
        covered += lo <= rate <= hi
    bootstrap = covered / N_AUDITS
    assert LOW <= wilson <= HIGH, wilson
    assert LOW <= bootstrap <= HIGH, bootstrap


def _null_audit(rng, seed, *, correction, rates=(0.2,) * 6, per_group=200):
    groups = np.repeat(list("abcdef"), per_group)
    y_true = rng.integers(0, 2, groups.size)
    error = np.repeat(rates, per_group)
    y_pred = np.where(rng.random(groups.size) < error, 1 - y_true, y_true)
    return audit_classification(
        y_true=y_true, y_pred=y_pred, groups=pd.DataFrame({"g": groups}), classes=["neg", "pos"], pos_label=1,
        n_boot=0, n_perm=100, seed=seed, reference_groups={"g": "a"}, correction=correction,
    )


@pytest.mark.parametrize("correction", ["fdr_bh", "holm"])
def test_no_true_difference_few_false_discoveries(correction):
    # Under the complete null every flag is false, so the false discovery rate equals
    # the chance that an audit flags anything. Each audit is a family of 60 tests.
    rng = np.random.default_rng(99)
    audits = 200
    flagged = sum(bool(_null_audit(rng, i, correction=correction).disparities["significant"].any())
                  for i in range(audits))
    assert flagged / audits <= 0.05


def test_planted_difference_is_found():
    # group f errs twice as often (0.4 vs 0.2) on 200 samples per group
    rng = np.random.default_rng(5)
    found = 0
    for i in range(30):
        d = _null_audit(rng, i, correction="fdr_bh", rates=(0.2, 0.2, 0.2, 0.2, 0.2, 0.4)).disparities
        hit = d[(d.metric == "error_rate") & (d.kind == "to_reference") & (d.group == "f")]
        found += bool(hit.significant.iloc[0])
    assert found >= 28
