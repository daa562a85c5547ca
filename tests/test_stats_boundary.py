"""Intervals and tests at the edges: rates near 0 and 1, tiny groups, people sharing images, big families.

Seeded simulations (deterministic), hand-computed design effects, and the
regressions measured on the old engine (see ``../shared/reference/statistics.md``,
"Near 0 and 1, with clustered units").
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from boundary_helpers import coverage_audit, null_classification_audit, null_detection_audit
from scipy.stats import chi2, norm
from scipy.stats import t as student_t
from statsmodels.genmod.cov_struct import Independence
from statsmodels.genmod.families import Gaussian
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from audit.stats import Attribute, audit_classification, audit_ratio_metrics, proportion_interval
from audit.stats._clustered import effective_size
from audit.stats._significance import _holm

RATES = (0.5, 0.9, 0.99, 0.999, 0.1, 0.01, 0.001)
SIZES = (30, 100, 1000)
REPLICATES = 200  # groups per grid point; each is one coverage trial


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- the design effect, by hand and against statsmodels -------------------------------------------------------

def test_design_effect_by_hand():
    # people found / people per image: (2/2), (1/3), (3/3), (0/1): n = 9, k = 6, p = 2/3, m = 4 images
    found = np.array([2.0, 1, 3, 0])
    people = np.array([2.0, 3, 3, 1])
    size = effective_size(found, people, np.arange(4), np.ones((4, 1), bool), n_clusters=4)
    # residuals y - p x: 2 - 4/3 = 2/3, 1 - 2 = -1, 3 - 2 = 1, 0 - 2/3 = -2/3; squares sum to 4/9 + 1 + 1 + 4/9 = 26/9
    # Var_cluster = m / (m - 1) * 26/9 / n^2 = 4/3 * 26/9 / 81 = 104/2187; Var_srs = p (1 - p) / n = 2/81
    # deff = (104/2187) / (2/81) = 104 * 81 / (2187 * 2) = 52/27
    assert size.design_effect[0] == pytest.approx(52 / 27)
    # n_eff = 9 / (52/27) = 243/52, shrunk by (z / t_3)^2 for the 3 degrees of freedom of 4 images
    shrink = (1.959963984540054 / student_t.ppf(0.975, 3)) ** 2
    assert size.n_effective[0] == pytest.approx(243 / 52 * shrink)
    assert size.successes_effective[0] == pytest.approx(2 / 3 * 243 / 52 * shrink)


def test_cluster_variance_is_the_gee_sandwich():
    # the linearised variance of a ratio of sums is the robust (sandwich) variance of an intercept-only GEE with
    # an independence working correlation, times the small-sample factor m / (m - 1)
    rng = np.random.default_rng(4)
    image = np.repeat(np.arange(60), rng.integers(1, 5, 60))
    found = (rng.random(image.size) < rng.beta(2, 1, 60)[image]).astype(float)
    size = effective_size(found, np.ones_like(found), image, np.ones((image.size, 1), bool), n_clusters=60,
                          confidence=0.95)
    n, p, m = image.size, found.mean(), 60
    gee = GEE(found, np.ones((n, 1)), groups=image, family=Gaussian(), cov_struct=Independence()).fit()
    robust = float(gee.cov_robust[0, 0]) * m / (m - 1)
    assert size.design_effect[0] == pytest.approx(max(1.0, robust / (p * (1 - p) / n)), rel=1e-6)


def test_design_effect_bounds():
    member = np.ones((3, 1), bool)
    # all found: the variance estimate is 0, so deff is 1 (the independent case), never below
    all_found = effective_size(np.ones(3), np.ones(3), np.array([0, 0, 1]), member, n_clusters=2)
    assert all_found.design_effect[0] == 1.0
    # one image: every person may share its outcome, so the group counts as one unit (deff = n)
    one_image = effective_size(np.array([1.0, 0, 0]), np.ones(3), np.zeros(3, int), member, n_clusters=1)
    assert one_image.design_effect[0] == 3 and one_image.n_effective[0] == 1
    # negatively correlated images (each image half found) would give deff < 1: floored at 1
    halves = effective_size(np.array([1.0, 0, 1, 0]), np.ones(4), np.array([0, 0, 1, 1]), np.ones((4, 1), bool),
                            n_clusters=2)
    assert halves.design_effect[0] == 1.0


# --- proportion intervals ---------------------------------------------------------------------------------------

def test_wilson_matches_statsmodels_away_from_the_edges():
    successes, trials = np.array([4, 10, 50, 996]), np.array([30, 30, 100, 1000])
    lower, upper = proportion_interval(successes, trials)
    expected = proportion_confint(successes, trials, method="wilson")
    np.testing.assert_allclose(lower, expected[0], atol=1e-12)
    np.testing.assert_allclose(upper, expected[1], atol=1e-12)


def test_wilson_takes_the_poisson_bound_next_to_the_edges():
    # 99 of 100 found: Wilson's upper bound 0.99826 misses a true 0.999 (coverage 0.905 there); the exact
    # Poisson bound on one miss in 100, chi2.ppf(0.025, 2) / 200 = 0.000253, gives 1 - 0.000253 = 0.999747
    lower, upper = proportion_interval([99, 1, 2], [100, 100, 30])
    assert upper[0] == pytest.approx(1 - chi2.ppf(0.025, 2) / 200) and upper[0] > 0.999
    assert lower[1] == pytest.approx(chi2.ppf(0.025, 2) / 200)
    assert lower[2] == pytest.approx(chi2.ppf(0.025, 4) / 60)  # x = 2 <= 2 for n <= 50
    assert lower[0] == pytest.approx(proportion_confint(99, 100, method="wilson")[0])  # the far side is Wilson's


# --- coverage on the grid, both engines ----------------------------------------------------------------------

def _grid_coverage(rows: pd.DataFrame, rate: float) -> tuple[float, float]:
    covered = ((rows.lower <= rate) & (rate <= rows.upper)).mean()
    zero_width = (rows.upper <= rows.lower).mean()
    return float(covered), float(zero_width)


def test_clustered_recall_intervals_cover_the_truth_on_the_grid():
    coverage = {}
    for rate in RATES:
        for n in SIZES:
            for icc in (0.0, 0.3):
                rng = np.random.default_rng([int(rate * 1000), n, int(icc * 10)])
                rows = coverage_audit(rng, replicates=REPLICATES, n_people=n, rate=rate, icc=icc)
                coverage[rate, n, icc], zero_width = _grid_coverage(rows, rate)
                assert zero_width == 0, (rate, n, icc)
    values = np.array(list(coverage.values()))
    assert 0.935 <= values.mean() <= 0.975, values.mean()
    worst = min(coverage, key=coverage.get)
    assert coverage[worst] >= 0.90, (worst, coverage[worst])


def _classification_coverage_rows(rng, *, n, error, interval="wilson"):
    """REPLICATES groups of n samples erring with probability ``error``; their error_rate rows."""
    group = np.repeat([f"r{r:04d}" for r in range(REPLICATES)], n)
    y_true = rng.integers(0, 2, group.size)
    y_pred = np.where(rng.random(group.size) < error, 1 - y_true, y_true)
    result = audit_classification(
        y_true=y_true, y_pred=y_pred, groups=pd.DataFrame({"replicate": group}), classes=["neg", "pos"],
        pos_label=1, metrics=["error_rate"], disparity_metrics=[], interval=interval,
        n_boot=200 if interval == "bootstrap" else 0, n_perm=0, min_group_size=1, seed=n,
    )
    return result.metrics.query("grouping == 'replicate' and metric == 'error_rate'")


def test_classification_intervals_cover_the_truth_on_the_grid():
    coverage = {}
    for error in RATES:
        for n in SIZES:
            rng = np.random.default_rng([int(error * 1000), n])
            rows = _classification_coverage_rows(rng, n=n, error=error)
            coverage[error, n], zero_width = _grid_coverage(rows, error)
            assert zero_width == 0
    values = np.array(list(coverage.values()))
    assert 0.935 <= values.mean() <= 0.975, values.mean()
    assert min(values) >= 0.90, coverage


def test_bootstrap_intervals_never_collapse_at_the_boundary():
    # the old engine: n = 30 at a true error of 0.05 covered 0.78, since a group with no error got [0, 0]
    rng = np.random.default_rng(30)
    rows = _classification_coverage_rows(rng, n=30, error=0.05, interval="bootstrap")
    covered, zero_width = _grid_coverage(rows, 0.05)
    assert zero_width == 0
    assert covered >= 0.90
    no_error = rows[rows.value == 0]
    assert len(no_error) and no_error.interval.str.endswith("_degenerate_wilson").all()
    # Wilson on the 30 samples at 0 errors: [0, 0.114]
    assert no_error.upper.iloc[0] == pytest.approx(proportion_interval(0, 30)[1][()])


def test_macro_metrics_get_an_interval_when_every_resample_is_equal():
    # a perfect 3-class classifier: every resample of macro TPR is 1.000; the interval must still have a width
    y = np.repeat([0, 1, 2], 150)
    result = audit_classification(y_true=y, y_pred=y, groups=pd.DataFrame({"g": np.tile(["a", "b"], 225)}),
                                  classes=["x", "y", "z"], n_boot=200, n_perm=50)
    macro = result.metrics.query("metric == 'tpr' and `class` == 'macro'")
    assert (macro.upper > macro.lower).all()
    overall = macro.query("grouping == 'overall'").iloc[0]
    assert overall.interval == "bootstrap_percentile_degenerate_wilson"
    assert overall.lower == pytest.approx(proportion_interval(450, 450)[0][()])


def test_continuous_metric_of_one_image_has_an_interval():
    # IoU-like sums in two images; the group in one image has all its resamples equal
    stats = pd.DataFrame({"inter": [30.0, 40, 10], "union": [40.0, 50, 40], "g": ["a", "b", "b"]})
    result = audit_ratio_metrics(statistics=stats, metrics={"iou": [("inter", "union")]}, groups=stats[["g"]],
                                 clusters=[1, 2, 3], n_boot=300, min_group_size=1)
    a = result.metrics.query("grouping == 'g' and group == 'a'").iloc[0]
    assert a.upper > a.lower and a.interval == "cluster_bootstrap_percentile_degenerate_wilson"
    d = result.disparities.query("group == 'a' or other == 'a'")
    assert len(d) and d.p_value.isna().all() and "none_single_image" in set(d.test) <= {"none_single_image", "none"}


# --- tests under the complete null ---------------------------------------------------------------------------

N_NULL = 150
# alpha plus two Monte Carlo standard errors of a share estimated from N_NULL audits
NULL_LIMIT = 0.05 + 2 * math.sqrt(0.05 * 0.95 / N_NULL)


def _any_flag(disparities: pd.DataFrame, method: str) -> bool:
    return bool((disparities[f"p_{method}"] <= 0.05).any())


@pytest.mark.parametrize(("rate", "icc"), [(0.99, 0.0), (0.99, 0.3), (0.9, 0.0), (0.9, 0.3)])
def test_detection_null_flags_at_most_alpha(rate, icc):
    # the old engine flagged 19 of 100 such audits at recall 0.99 (Wald tests on a collapsed bootstrap SE)
    rng = np.random.default_rng([7, int(rate * 100), int(icc * 10)])
    audits = [null_detection_audit(rng, rate=rate, icc=icc, seed=i).disparities for i in range(N_NULL)]
    assert len(audits[0]) and audits[0].p_value.notna().sum() >= 10
    for method in ("fdr_bh", "holm"):
        share = np.mean([_any_flag(d, method) for d in audits])
        assert share <= NULL_LIMIT, (method, share)


@pytest.mark.parametrize("error", [0.01, 0.2])
def test_classification_null_flags_at_most_alpha(error):
    rng = np.random.default_rng([8, int(error * 100)])
    audits = [null_classification_audit(rng, error=error, seed=i).disparities for i in range(N_NULL)]
    for method in ("fdr_bh", "holm"):
        share = np.mean([_any_flag(d, method) for d in audits])
        assert share <= NULL_LIMIT, (method, share)


# --- regressions -----------------------------------------------------------------------------------------------

def test_a_one_image_group_with_lower_recall_is_not_significant():
    # 300 images of 1-3 people found with 0.99, and one image of three people in its own group, one of them found:
    # the old engine gave that group p = 2.4e-30 from a zero bootstrap SE
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 4, 300)
    image = np.concatenate([np.repeat(np.arange(300), sizes), [300, 300, 300]])
    found = np.concatenate([rng.random(sizes.sum()) < 0.99, [True, False, False]]).astype(float)
    camera = np.where(image == 300, "rare", "common")
    result = audit_ratio_metrics(statistics=pd.DataFrame({"m": found, "t": 1.0}), metrics={"recall": [("m", "t")]},
                                 groups=pd.DataFrame({"camera": camera}), clusters=image, n_boot=200,
                                 min_group_size=1)
    rare = result.metrics.query("group == 'rare'").iloc[0]
    assert rare.n_effective == pytest.approx(1.0)  # one image: one effective unit
    assert rare.lower < 0.05 and rare.upper > 0.9
    d = result.disparities.query("group == 'rare' or other == 'rare'")
    # one image has 0 degrees of freedom for its variance: the group is shown but not tested
    assert len(d) and not d.significant.any() and d.p_value.isna().all()
    assert "none_single_image" in set(d.test) <= {"none_single_image", "none"}  # to_overall_max is never tested


def test_a_large_range_is_flagged_under_holm_in_a_big_family():
    # 0.427 between the best and worst of 10 groups of 200, inside a family of more than 100 tests: the old
    # permutation range test could not go below 1/1001, and Holm multiplied that by the family size (p = 0.089)
    rng = np.random.default_rng(3)
    n = 200
    errors = np.array([0.05] * 9 + [0.477])
    group = np.repeat([f"g{i}" for i in range(10)], n)
    y_true = rng.integers(0, 2, group.size)
    y_pred = np.where(rng.random(group.size) < np.repeat(errors, n), 1 - y_true, y_true)
    light = np.tile(["bright", "dim"], group.size // 2)  # a second attribute and its intersection grow the family
    result = audit_classification(
        y_true=y_true, y_pred=y_pred, groups=pd.DataFrame({"site": group, "light": light}), classes=["neg", "pos"],
        pos_label=1, intersections=[("site", "light")], n_boot=0, n_perm=1000, correction="holm",
    )
    d = result.disparities
    assert result.significance["family_size"] >= 100
    gap = d.query("metric == 'error_rate' and kind == 'between_groups' and grouping == 'site'").iloc[0]
    assert gap.difference > 0.35 and gap.significant
    assert np.isnan(gap.difference_lower) and np.isnan(gap.difference_upper)  # a range gets no interval


def test_no_group_is_compared_with_itself():
    # every group has the same value: the range is 0 between two different groups
    y = np.zeros(40, int)
    result = audit_classification(y_true=y, y_pred=y, groups=pd.DataFrame({"age": np.repeat(["young", "old"], 20)}),
                                  classes=["a", "b"], n_boot=0, n_perm=10, min_group_size=1)
    rows = result.disparities.query("kind == 'between_groups'")
    assert len(rows) and (rows.group != rows.other).all()


def test_rows_that_mean_nothing_are_not_computed():
    rng = np.random.default_rng(0)
    gender = np.repeat(["female", "male"], 100)
    skin = np.tile(["lighter", "darker"], 100)
    y_true = (gender == "male").astype(int)  # the task predicts gender: a gender subgroup holds one class
    y_pred = np.where(rng.random(200) < 0.1, 1 - y_true, y_true)
    result = audit_classification(y_true=y_true, y_pred=y_pred, classes=["female", "male"],
                                  groups=pd.DataFrame({"gender": gender, "skin": skin}),
                                  intersections=[("gender", "skin")], n_boot=0, n_perm=20)
    m = result.metrics
    assert m.query("metric == 'selection_rate' and `class` == 'macro'").empty  # 1/C in every group
    in_one_gender = m.query("grouping == 'gender × skin' and metric == 'ppv' and `class` == 'macro'")
    assert in_one_gender.value.isna().all() and (in_one_gender.interval == "not_applicable").all()
    assert result.disparities.query("grouping == 'gender × skin' and `class` == 'macro'").empty
    assert not any("macro" in w for w in result.warnings)
    # with a positive class, only its rows are reported and tested
    binary = audit_classification(y_true=y_true, y_pred=y_pred, classes=["female", "male"], pos_label=1,
                                  groups=pd.DataFrame({"skin": skin}), n_boot=0, n_perm=20)
    assert set(binary.metrics["class"]) == {"", "male"}
    assert set(binary.disparities["class"]) <= {"", "male"}


def test_permutation_p_values_are_refined_for_the_family():
    # a macro-PPV gap tested by permutation with only 50 permutations: its p-value sits at the floor 1/51, which
    # Holm would multiply by the family size; the engine reruns it with 10 m / alpha permutations
    rng = np.random.default_rng(2)
    site = np.repeat(["a", "b", "c"], 300)
    y_true = rng.integers(0, 3, site.size)
    wrong = rng.random(site.size) < np.where(site == "c", 0.6, 0.05)
    y_pred = np.where(wrong, (y_true + 1) % 3, y_true)
    result = audit_classification(y_true=y_true, y_pred=y_pred, groups=pd.DataFrame({"site": site}),
                                  classes=["x", "y", "z"], n_boot=0, n_perm=50, correction="holm")
    row = result.disparities.query("metric == 'ppv' and `class` == 'macro' and kind == 'between_groups'").iloc[0]
    assert row.test == "permutation"
    assert row.p_value < 1 / 51  # below the floor of the first 50 permutations
    assert row.significant


def test_holm_equals_statsmodels():
    rng = np.random.default_rng(0)
    for _ in range(100):
        p = rng.random(rng.integers(1, 300)) ** 3
        p[rng.random(p.size) < 0.2] = p[0]  # ties
        reject, adjusted = _holm(p, 0.05)
        expected = multipletests(p, alpha=0.05, method="holm")
        np.testing.assert_allclose(adjusted, expected[1])
        np.testing.assert_array_equal(reject, expected[0])


def test_gap_tests_never_have_p_zero_at_recall_one():
    # both groups all found but one: a zero bootstrap variance must not give p = 0
    stats = pd.DataFrame({"m": [1.0] * 20 + [1.0] * 19 + [0.0], "t": 1.0})
    groups = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 20})
    result = audit_ratio_metrics(statistics=stats, metrics={"recall": [("m", "t")]}, groups=groups,
                                 clusters=np.arange(40) // 2, attributes=[Attribute("g")], n_boot=200,
                                 reference_groups={"g": "a"}, min_group_size=1)
    d = result.disparities
    assert d.p_value.dropna().gt(0.1).all()
    m = result.metrics.query("grouping == 'g'")
    assert (m.upper > m.lower).all()


def test_regression_gate_never_gets_p_zero_from_a_zero_variance():
    # recall 1.000 on 100 people, then 0.990: neither side's interval showed any variance. The gate falls back to
    # the Agresti-Coull variance bound of each side: p~ = (v n + 1.92) / (n + 3.84), var = p~ (1 - p~) / (n + 3.84)
    from audit.stats._compare import _floored_p

    z2 = 1.959963984540054 ** 2
    var = sum(((v * 100 + z2 / 2) / (100 + z2)) * (1 - (v * 100 + z2 / 2) / (100 + z2)) / (100 + z2)
              for v in (1.0, 0.99))
    p = _floored_p(0.01, {"baseline": 1.0, "candidate": 0.99, "n_baseline": 100, "n_candidate": 100})
    assert p == pytest.approx(float(norm.sf(0.01 / math.sqrt(var))))
    assert 0.3 < p < 0.5
    assert math.isnan(_floored_p(0.2, {"baseline": 1.5, "candidate": 1.3, "n_baseline": 10, "n_candidate": 10}))


def test_difference_intervals_do_not_collapse_when_both_groups_are_perfect():
    # no errors in either group: every resampled difference is 0; the interval is 0 -/+ z * sqrt of the two
    # sides' variance bounds instead of [0, 0]
    y = np.tile([0, 1], 60)
    result = audit_classification(y_true=y, y_pred=y, groups=pd.DataFrame({"site": np.repeat(["a", "b"], 60)}),
                                  classes=["neg", "pos"], pos_label=1, reference_groups={"site": "a"}, n_boot=200,
                                  n_perm=50, min_group_size=1)
    d = result.disparities.query("kind == 'to_reference' and metric == 'error_rate'").iloc[0]
    z2 = 1.959963984540054 ** 2
    p_tilde = (z2 / 2) / (60 + z2)
    half = 1.959963984540054 * math.sqrt(2 * p_tilde * (1 - p_tilde) / (60 + z2))
    assert (d.difference_lower, d.difference_upper) == (pytest.approx(-half), pytest.approx(half))
