"""Why the gap: stratified, pooled and adjusted disparities (issue #21, the engine).

Mantel-Haenszel figures against statsmodels' ``StratifiedTable`` and by hand,
the regression adjustment against a direct statsmodels fit, seeded
simulations of planted causes, Simpson's paradox, strata without overlap, and
the edges (a stratum of one, a group absent, every outcome alike).
"""

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.special import expit
from scipy.stats import norm
from statsmodels.genmod.cov_struct import Exchangeable
from statsmodels.genmod.families import Binomial
from statsmodels.stats.contingency_tables import StratifiedTable

from audit.errors import StatsInputError
from audit.stats import (
    AdjustedGap,
    OverlapWarning,
    SimpsonWarning,
    UndefinedMetricWarning,
    explanation_sentence,
    quantile_bins,
    stratified_disparity,
)
from audit.stats._mantel import _sato_variance, mh_risk_difference


def rows_from_tables(tables, *, covariate="lighting"):
    """One row per person from tables of shape (K, 2, 2): [group, reference] x [error, no error]."""
    frames = []
    for k, table in enumerate(np.asarray(tables, dtype=int)):
        for g, label in enumerate(("A", "B")):
            errors, fine = table[g]
            frames.append(pd.DataFrame({"error": [1] * errors + [0] * fine, "group": label, covariate: f"s{k}"}))
    return pd.concat(frames, ignore_index=True)


def run(data, **kwargs):
    kwargs.setdefault("groups", ("A", "B"))
    kwargs.setdefault("n_boot", 0)
    kwargs.setdefault("regression", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"], **kwargs)


# --- Mantel-Haenszel against statsmodels and by hand -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_mh_figures_equal_statsmodels_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    tables = rng.integers(3, 60, size=(int(rng.integers(2, 6)), 2, 2))
    gap = run(rows_from_tables(tables)).gaps[0]
    reference = StratifiedTable(np.moveaxis(tables.astype(float), 0, -1))
    lower, upper = reference.oddsratio_pooled_confint(alpha=0.05)
    assert gap.mh_odds_ratio == pytest.approx(reference.oddsratio_pooled, rel=1e-12)
    assert (gap.mh_odds_ratio_lower, gap.mh_odds_ratio_upper) == pytest.approx((lower, upper), rel=1e-12)
    assert gap.mh_ratio == pytest.approx(reference.riskratio_pooled, rel=1e-12)
    cmh = reference.test_null_odds(correction=False)
    assert (gap.cmh_statistic, gap.cmh_p) == pytest.approx((cmh.statistic, cmh.pvalue), rel=1e-9)
    bd = reference.test_equal_odds(adjust=False)
    assert (gap.breslow_day_statistic, gap.breslow_day_p) == pytest.approx((bd.statistic, bd.pvalue), rel=1e-9)
    assert gap.design_effect == 1.0


def test_mh_risk_difference_and_ratio_by_hand():
    # stratum 1: group 2/4 errors, reference 1/4; N = 8, w = 4*4/8 = 2, RD = 1/2 - 1/4 = 1/4
    # stratum 2: group 3/6, reference 1/3;        N = 9, w = 6*3/9 = 2, RD = 1/2 - 1/3 = 1/6
    # RD_MH = (2 * 1/4 + 2 * 1/6) / 4 = 5/24
    # Sato: P1 = (16*1 - 16*2 + 16*0/2)/64 = -1/4,  Q1 = (2*3 + 1*2)/16 = 1/2
    #       P2 = (36*1 - 9*3 + 18*(3-6)/2)/81 = -2/9, Q2 = (3*2 + 1*3)/18 = 1/2
    #       Var = (5/24 * (-1/4 - 2/9) + 1) / 4^2 = (1 - 85/864) / 16
    # RR_MH = (2*4/8 + 3*3/9) / (1*4/8 + 1*6/9) = 2 / (7/6) = 12/7
    # Greenland-Robins: Var(log RR) = ((16*3 - 2*8)/64 + (18*4 - 3*9)/81) / (2 * 7/6) = (1/2 + 5/9) / (7/3) = 19/42
    tables = np.array([[[2, 2], [1, 3]], [[3, 3], [1, 2]]])
    gap = run(rows_from_tables(tables)).gaps[0]
    z = norm.ppf(0.975)
    se = np.sqrt((1 - 85 / 864) / 16)
    assert gap.mh_gap == pytest.approx(5 / 24, rel=1e-12)
    assert (gap.mh_gap_lower, gap.mh_gap_upper) == pytest.approx((5 / 24 - z * se, 5 / 24 + z * se), rel=1e-12)
    assert gap.mh_ratio == pytest.approx(12 / 7, rel=1e-12)
    half = z * np.sqrt(19 / 42)
    assert (gap.mh_ratio_lower, gap.mh_ratio_upper) == pytest.approx((12 / 7 * np.exp(-half), 12 / 7 * np.exp(half)))


def test_mh_risk_difference_cross_checks():
    # one stratum: the crude difference and the binomial (Wald) variance
    table = np.array([[[7, 23], [5, 60]]], dtype=float)
    rd = float(mh_risk_difference(table))
    assert rd == pytest.approx(7 / 30 - 5 / 65)
    assert _sato_variance(table, rd) == pytest.approx((7 / 30) * (23 / 30) / 30 + (5 / 65) * (60 / 65) / 65)
    # a few large strata: Sato's variance agrees with Greenland-Robins' large-strata variance
    rng = np.random.default_rng(3)
    n1, n0 = rng.integers(2000, 5000, 4), rng.integers(2000, 5000, 4)
    a, c = rng.binomial(n1, 0.2), rng.binomial(n0, 0.1)
    tables = np.stack([np.stack([a, n1 - a], -1), np.stack([c, n0 - c], -1)], 1).astype(float)
    w = n1 * n0 / (n1 + n0)
    large = np.sum(w**2 * (a / n1 * (1 - a / n1) / n1 + c / n0 * (1 - c / n0) / n0)) / w.sum() ** 2
    assert _sato_variance(tables, float(mh_risk_difference(tables))) == pytest.approx(large, rel=0.01)


def test_breslow_day_at_a_pooled_odds_ratio_of_one_and_with_single_outcome_strata():
    # both strata have odds ratio 1: statsmodels' quadratic divides by 1 - OR = 0 (NaN); the linear root gives 0
    tables = np.array([[[10, 20], [5, 10]], [[3, 6], [9, 18]]])
    gap = run(rows_from_tables(tables)).gaps[0]
    assert gap.mh_odds_ratio == pytest.approx(1.0) and gap.breslow_day_statistic == pytest.approx(0.0, abs=1e-12)
    assert gap.breslow_day_p == pytest.approx(1.0)
    # a stratum where nobody errs adds nothing to the odds-ratio sums, and would make Breslow-Day NaN
    informative = np.array([[[10, 20], [5, 30]], [[3, 6], [2, 18]]])
    with_empty = np.concatenate([informative, [[[0, 40], [0, 25]]]])
    gap = run(rows_from_tables(with_empty)).gaps[0]
    reference = StratifiedTable(np.moveaxis(with_empty.astype(float), 0, -1))
    assert gap.mh_odds_ratio == pytest.approx(reference.oddsratio_pooled)
    assert gap.cmh_statistic == pytest.approx(reference.test_null_odds().statistic)
    bd = StratifiedTable(np.moveaxis(informative.astype(float), 0, -1)).test_equal_odds()
    assert (gap.breslow_day_statistic, gap.breslow_day_p) == pytest.approx((bd.statistic, bd.pvalue))
    # ... while the risk difference keeps its weight: w = 40*25/65
    w = np.array([30 * 35 / 65, 9 * 20 / 29, 40 * 25 / 65])
    rd = np.array([10 / 30 - 5 / 35, 3 / 9 - 2 / 20, 0.0])
    assert gap.mh_gap == pytest.approx(np.sum(w * rd) / w.sum())


def test_strata_are_combinations_of_several_covariates():
    data = people(21)
    data["brightness"] = quantile_bins(np.random.default_rng(0).random(len(data)), n_bins=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting", "brightness"],
                                        groups=("A", "B"), n_boot=50, regression="glm")
    assert len(analysis.strata) == 9
    assert sum(s.startswith("lighting=dim × brightness=≤ ") for s in analysis.strata["stratum"]) == 1
    assert analysis.gaps[0].covariates == ("lighting", "brightness")
    assert analysis.strata["weight"].sum() == pytest.approx(1.0)


def test_cluster_design_effect_undoes_duplicated_people():
    # every person copied three times into one image: the design effect is about 3 and the tests stay put
    rng = np.random.default_rng(4)
    tables = rng.integers(10, 60, size=(3, 2, 2))
    once = rows_from_tables(tables).assign(image=lambda d: np.arange(len(d)))
    thrice = pd.concat([once] * 3, ignore_index=True)
    single, copied = run(once, cluster="image").gaps[0], run(thrice, cluster="image").gaps[0]
    assert copied.design_effect == pytest.approx(3.0, rel=0.02)
    assert copied.cmh_statistic == pytest.approx(single.cmh_statistic, rel=0.02)
    assert copied.mh_gap == pytest.approx(single.mh_gap, rel=1e-12)
    assert copied.mh_gap_upper - copied.mh_gap_lower == pytest.approx(single.mh_gap_upper - single.mh_gap_lower,
                                                                      rel=0.02)


# --- the regression adjustment against a direct statsmodels fit ------------------------------------------------

def people(seed, *, n_images=600, confounded=True, effect=1.0):
    """People in images (1-4 each); lighting per image; darker people more often in dim light when confounded."""
    rng = np.random.default_rng(seed)
    image = np.repeat(np.arange(n_images), rng.integers(1, 5, n_images))
    light = rng.choice(["dim", "ok", "bright"], n_images, p=[0.3, 0.4, 0.3])[image]
    p_dark = np.select([light == "dim", light == "ok"], [0.7, 0.45], 0.2) if confounded else np.full(image.size, .45)
    group = np.where(rng.random(image.size) < p_dark, "A", "B")
    risk = np.select([light == "dim", light == "ok"], [0.16, 0.07], 0.02) * np.where(group == "A", effect, 1.0)
    bump = rng.normal(0, 0.4, n_images)[image]  # images differ: people in one image share some of their risk
    error = (rng.random(image.size) < expit(np.log(risk / (1 - risk)) + bump - 0.08)).astype(int)
    return pd.DataFrame({"error": error, "group": group, "lighting": light, "image": image})


def direct_marginal_gap(fitted, data):
    """Mean prediction with everyone in A minus everyone in B, and its delta-method SE by finite differences."""
    exog_a = fitted.model.data.orig_exog.copy()
    names = list(exog_a.columns)
    column = next(c for c in names if c.startswith("C(group"))
    exog_b = exog_a.copy()
    exog_a[column], exog_b[column] = 0.0, 1.0  # the formula's dummy is group B (A is the first level)
    x_a, x_b = exog_a.to_numpy(), exog_b.to_numpy()

    def gap(beta):
        return expit(x_a @ beta).mean() - expit(x_b @ beta).mean()

    beta = np.asarray(fitted.params)
    step = 1e-6
    gradient = np.array([(gap(beta + step * e) - gap(beta - step * e)) / (2 * step) for e in np.eye(beta.size)])
    return gap(beta), float(np.sqrt(gradient @ np.asarray(fitted.cov_params()) @ gradient))


def test_regression_gap_equals_a_direct_glm_fit():
    data = people(11)
    gap = run(data, regression="glm").gaps[0]
    fitted = smf.glm("error ~ C(group) + C(lighting)", data, family=Binomial()).fit()
    value, se = direct_marginal_gap(fitted, data)
    z = norm.ppf(0.975)
    assert gap.regression_model == "glm"
    assert gap.regression_gap == pytest.approx(value, rel=1e-6)
    assert (gap.regression_gap_lower, gap.regression_gap_upper) == pytest.approx((value - z * se, value + z * se),
                                                                                rel=1e-5)
    assert gap.regression_p == pytest.approx(2 * norm.sf(abs(value) / se), rel=1e-4)


def test_regression_gap_equals_a_direct_gee_fit():
    data = people(12)
    gap = run(data, regression="auto", cluster="image").gaps[0]
    fitted = smf.gee("error ~ C(group) + C(lighting)", "image", data, family=Binomial(),
                     cov_struct=Exchangeable()).fit()
    value, se = direct_marginal_gap(fitted, data)
    assert gap.regression_model == "gee"
    assert gap.regression_gap == pytest.approx(value, rel=1e-5)
    z = norm.ppf(0.975)
    assert (gap.regression_gap_lower, gap.regression_gap_upper) == pytest.approx((value - z * se, value + z * se),
                                                                                rel=1e-4)


# --- planted causes ---------------------------------------------------------------------------------------------

def test_covariate_explains_the_gap_when_it_is_the_only_cause():
    # the outcome depends on lighting only; group A is more often in dim light
    raw_significant = adjusted_covers_0 = regression_covers_0 = share_covers_1 = 0
    draws = 12
    for seed in range(draws):
        gap = run(people(100 + seed, n_images=1500), n_boot=400, seed=seed, regression="glm").gaps[0]
        raw_significant += gap.raw_p < 0.05 and gap.raw_gap_lower > 0
        adjusted_covers_0 += gap.mh_gap_lower <= 0 <= gap.mh_gap_upper
        regression_covers_0 += gap.regression_gap_lower <= 0 <= gap.regression_gap_upper
        share_covers_1 += gap.share_lower <= 1 <= gap.share_upper
    assert raw_significant == draws
    assert adjusted_covers_0 >= draws - 2 and regression_covers_0 >= draws - 2
    assert share_covers_1 >= draws - 2


def test_covariate_explains_it_with_images_and_gee():
    gap = run(people(7, n_images=1500), n_boot=400, cluster="image", regression="auto").gaps[0]
    assert gap.raw_p < 0.05 and gap.regression_model == "gee"
    assert gap.mh_gap_lower <= 0 <= gap.mh_gap_upper
    assert gap.regression_gap_lower <= 0 <= gap.regression_gap_upper
    assert gap.share_lower <= 1 <= gap.share_upper
    assert gap.design_effect >= 1.0


def test_group_gap_survives_adjustment_when_the_group_is_the_cause():
    # twice the risk for group A in every stratum; the group is unrelated to lighting
    significant = share_small = 0
    draws = 12
    for seed in range(draws):
        gap = run(people(200 + seed, n_images=1500, confounded=False, effect=2.0), n_boot=400, seed=seed,
                  regression="glm").gaps[0]
        significant += gap.cmh_p < 0.05 and gap.mh_gap_lower > 0 and gap.regression_gap_lower > 0
        share_small += gap.share_lower <= 0 <= gap.share_upper and abs(gap.share_explained) < 0.25
    assert significant == draws
    assert share_small >= draws - 2


def test_simpson_reversal_warns():
    # hard stratum: A 120/400 = 0.30, B 40/100 = 0.40; easy stratum: A 2/100 = 0.02, B 20/400 = 0.05
    # raw: A 122/500 = 0.244 > B 60/500 = 0.12, but A fares better in both strata: RD_MH = (80*-0.1 + 80*-0.03)/160
    tables = np.array([[[120, 280], [40, 60]], [[2, 98], [20, 380]]])
    with pytest.warns(SimpsonWarning, match="Simpson's paradox"):
        analysis = stratified_disparity(rows_from_tables(tables), outcome="error", attribute="group",
                                        covariates=["lighting"], groups=("A", "B"), n_boot=200)
    gap = analysis.gaps[0]
    assert gap.raw_gap == pytest.approx(0.124)
    assert gap.mh_gap == pytest.approx(-0.065)
    assert gap.reversed and gap.mh_gap_upper < 0
    assert gap.share_explained > 1
    sentence = explanation_sentence(gap, group_name="group A", reference_name="group B", covariate_name="lighting",
                                    outcome_verb="misclassified")
    assert sentence.startswith("After accounting for lighting, the gap reverses: group A are misclassified")


def test_strata_without_overlap_are_named_and_left_out():
    tables = np.array([[[10, 90], [5, 95]], [[8, 40], [4, 44]]])
    data = rows_from_tables(tables)
    night = pd.DataFrame({"error": [1, 0, 0, 1, 0], "group": "B", "lighting": "night"})
    with pytest.warns(OverlapWarning, match="lighting=night"):
        analysis = stratified_disparity(pd.concat([data, night], ignore_index=True), outcome="error",
                                        attribute="group", covariates=["lighting"], groups=("A", "B"), n_boot=0,
                                        regression="glm")
    gap = analysis.gaps[0]
    assert gap.excluded_strata == ("lighting=night",) and gap.n_excluded == 5
    alone = run(data, regression="glm").gaps[0]
    assert gap.mh_gap == pytest.approx(alone.mh_gap) and gap.cmh_p == pytest.approx(alone.cmh_p)
    assert gap.regression_gap == pytest.approx(alone.regression_gap)
    assert gap.n_reference == alone.n_reference + 5  # the raw gap keeps everyone
    night_row = analysis.strata.set_index("stratum").loc["lighting=night"]
    assert not night_row["overlap"] and night_row["weight"] == 0 and night_row["n_group"] == 0


# --- edges ------------------------------------------------------------------------------------------------------

def p_values(gap: AdjustedGap):
    return [gap.raw_p, gap.cmh_p, gap.breslow_day_p, gap.regression_p]


def test_a_stratum_of_one_sample():
    tables = np.array([[[10, 90], [5, 95]], [[8, 40], [4, 44]]])
    data = pd.concat([rows_from_tables(tables), pd.DataFrame({"error": [1], "group": "A", "lighting": "flash"})],
                     ignore_index=True)
    with pytest.warns(OverlapWarning, match="lighting=flash"):
        analysis = stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"],
                                        groups=("A", "B"), n_boot=100)
    gap = analysis.gaps[0]
    assert gap.excluded_strata == ("lighting=flash",) and gap.n_excluded == 1
    assert np.isfinite(gap.mh_gap) and np.isfinite(gap.share_explained)


def test_a_group_absent():
    data = rows_from_tables(np.array([[[10, 90], [5, 95]], [[8, 40], [4, 44]]]))
    with pytest.warns(UndefinedMetricWarning, match="no one in 'C'"):
        analysis = stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"],
                                        groups=("C", "B"), n_boot=100)
    gap = analysis.gaps[0]
    assert gap.n_group == 0
    for value in (gap.raw_gap, gap.mh_gap, gap.mh_ratio, gap.regression_gap, gap.share_explained, *p_values(gap)):
        assert np.isnan(value)


@pytest.mark.parametrize("outcome", [0, 1])
def test_every_outcome_alike(outcome):
    data = rows_from_tables(np.array([[[10, 90], [5, 95]], [[8, 40], [4, 44]]])).assign(error=outcome)
    data["image"] = np.arange(len(data)) // 2
    with pytest.warns(UndefinedMetricWarning) as caught:
        analysis = stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"],
                                        groups=("A", "B"), cluster="image", n_boot=100)
    messages = " | ".join(str(w.message) for w in caught)
    assert "no share to explain" in messages and f"every outcome is {outcome}" in messages
    gap = analysis.gaps[0]
    assert gap.raw_gap == 0 and gap.mh_gap == 0
    assert gap.mh_gap_lower < 0 < gap.mh_gap_upper  # never an interval of zero width
    assert np.isnan(gap.share_explained) and np.isnan(gap.regression_gap)
    assert np.isnan(gap.cmh_p) and np.isnan(gap.breslow_day_p)
    assert all(np.isnan(p) or p > 0 for p in p_values(gap))
    assert gap.raw_p == 1.0
    assert analysis.strata["p_value"].gt(0).all()


def test_no_p_value_is_zero_when_one_group_never_errs():
    tables = np.array([[[0, 300], [12, 288]], [[0, 200], [9, 191]]])
    gap = run(rows_from_tables(tables), regression="glm").gaps[0]
    assert gap.mh_gap < 0 and gap.mh_ratio == 0
    assert all(np.isnan(p) or p > 0 for p in p_values(gap))
    assert np.isnan(gap.regression_gap_lower)  # separation: no interval from the model


# --- helpers, output and input checks ---------------------------------------------------------------------------

def test_every_group_against_a_reference():
    data = people(5).replace({"group": {"B": "lighter", "A": "darker"}})
    data.loc[data.index % 7 == 0, "group"] = "medium"
    analysis = run(data, groups=None, reference="lighter")
    assert [(g.group, g.reference) for g in analysis.gaps] == [("darker", "lighter"), ("medium", "lighter")]
    assert set(analysis.summary["group"]) == {"darker", "medium"}
    assert set(analysis.strata["group"]) == {"darker", "medium"}


def test_to_dict_is_builtin_and_json_ready():
    analysis = run(people(6), n_boot=50, regression="glm")
    out = analysis.to_dict()
    text = json.dumps(out)
    assert json.loads(text)["gaps"][0]["covariates"] == ["lighting"]
    assert isinstance(out["strata"][0]["n_group"], int) and isinstance(out["gaps"][0]["mh_gap"], float)


def test_explanation_sentence():
    gap = run(people(8), regression="none").gaps[0]
    example = dataclasses.replace(gap, raw_gap=0.027, mh_gap=0.018, mh_gap_lower=0.006, mh_gap_upper=0.03,
                                  mh_ratio=2.1, reversed=False)
    assert explanation_sentence(example, group_name="darker-skinned people", reference_name="lighter-skinned people",
                                covariate_name="lighting") == (
        "After accounting for lighting, darker-skinned people are still missed 2.1 times as often as "
        "lighter-skinned people: 0.9 of the 2.7-point gap is lighting.")
    unclear = dataclasses.replace(example, mh_gap=0.004, mh_gap_lower=-0.01, mh_gap_upper=0.018, mh_ratio=1.2)
    assert "cannot tell from no difference: 2.3 of the 2.7-point gap is lighting." in explanation_sentence(
        unclear, group_name="darker-skinned people", reference_name="lighter-skinned people",
        covariate_name="lighting")
    none = dataclasses.replace(example, raw_gap=0.0)
    assert "no gap for lighting to explain" in explanation_sentence(
        none, group_name="darker-skinned people", reference_name="lighter-skinned people", covariate_name="lighting")


def test_quantile_bins():
    values = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, None])
    bins = quantile_bins(values, n_bins=4)
    assert list(bins.categories) == ["≤ 0.2", "0.2–0.4", "0.4–0.6", "> 0.6", "unknown"]
    assert list(pd.Series(bins).value_counts(sort=False)) == [2, 2, 2, 2, 1]
    ties = quantile_bins([1, 1, 1, 1, 1, 1, 2, 3], n_bins=4)
    assert list(ties.categories) == ["≤ 1", "> 1"]  # tied values never straddle an edge: 6 ones, then 2 and 3
    assert list(quantile_bins([1, 1, 2, 2, 3, 3, 4, 4], n_bins=4).categories) == ["≤ 1", "1–2", "2–3", "> 3"]
    assert list(quantile_bins([5, 5, 5]).categories) == ["5"]


def test_input_errors():
    data = rows_from_tables(np.array([[[1, 2], [1, 2]]]))
    with pytest.raises(StatsInputError, match="expected outcome column 'error' to hold only 0 and 1, found 2"):
        stratified_disparity(data.assign(error=2), outcome="error", attribute="group", covariates=["lighting"],
                             groups=("A", "B"))
    with pytest.raises(StatsInputError, match=r"expected exactly one of groups=\(group, reference\) or reference="):
        stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"])
    with pytest.raises(StatsInputError, match=r"expected columns \['light'\] in the data"):
        stratified_disparity(data, outcome="error", attribute="group", covariates=["light"], groups=("A", "B"))
    with pytest.raises(StatsInputError, match="bin a continuous covariate first with quantile_bins"):
        stratified_disparity(pd.DataFrame({"error": 0, "group": "A", "lighting": np.arange(40) / 7}),
                             outcome="error", attribute="group", covariates=["lighting"], groups=("A", "B"))
    with pytest.raises(StatsInputError, match="expected a cluster column for regression='gee'"):
        stratified_disparity(data, outcome="error", attribute="group", covariates=["lighting"], groups=("A", "B"),
                             regression="gee")
