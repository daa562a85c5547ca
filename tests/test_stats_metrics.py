"""Hand-computed checks of every classification metric, interval and disparity."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, chi2

from audit.errors import StatsInputError
from audit.stats import (
    Attribute,
    UndefinedMetricWarning,
    audit_classification,
    proportion_interval,
    rate_components,
)


def _rows(tp, fn, fp, tn, abstain_pos=0, abstain_neg=0):
    """(y_true, y_pred) pairs for a binary group with the given confusion cells; -1 = abstention."""
    pairs = [(1, 1)] * tp + [(1, 0)] * fn + [(0, 1)] * fp + [(0, 0)] * tn
    pairs += [(1, -1)] * abstain_pos + [(0, -1)] * abstain_neg
    return pairs


@pytest.fixture
def two_groups():
    # group A: TP=3 FN=1 FP=2 TN=4, one abstention on a positive -> n=11, processed=10
    # group B: TP=1 FN=1 FP=0 TN=5 -> n=7, processed=7
    a = _rows(3, 1, 2, 4, abstain_pos=1)
    b = _rows(1, 1, 0, 5)
    y_true = np.array([t for t, _ in a + b])
    y_pred = np.array([p for _, p in a + b])
    groups = pd.DataFrame({"site": ["A"] * len(a) + ["B"] * len(b)})
    return y_true, y_pred, groups


def _audit(y_true, y_pred, groups, **kwargs):
    kwargs.setdefault("n_boot", 0)
    kwargs.setdefault("n_perm", 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return audit_classification(y_true=y_true, y_pred=y_pred, groups=groups, classes=["neg", "pos"], **kwargs)


def test_binary_metrics_by_hand(two_groups):
    result = _audit(*two_groups, pos_label=1)
    v = lambda metric, group, cls="": result.value(metric=metric, grouping="site", group=group, cls=cls)
    # A: correct = TP + TN = 7 of 10 processed; 1 abstention of 11
    assert v("accuracy", "A") == pytest.approx(7 / 10, abs=1e-15)
    assert v("error_rate", "A") == pytest.approx(3 / 10, abs=1e-15)
    assert v("abstention_rate", "A") == pytest.approx(1 / 11, abs=1e-15)
    # Gender Shades overall error counts abstentions: (NA + FALSE) / N = (1 + 3) / 11
    assert v("overall_error", "A") == pytest.approx(4 / 11, abs=1e-15)
    assert v("tpr", "A", "pos") == pytest.approx(3 / 4)  # TP / (TP + FN)
    assert v("fnr", "A", "pos") == pytest.approx(1 / 4)
    assert v("fpr", "A", "pos") == pytest.approx(2 / 6)  # FP / (FP + TN)
    assert v("tnr", "A", "pos") == pytest.approx(4 / 6)
    assert v("ppv", "A", "pos") == pytest.approx(3 / 5)  # TP / (TP + FP)
    assert v("fdr", "A", "pos") == pytest.approx(2 / 5)  # 1 - PPV
    assert v("npv", "A", "pos") == pytest.approx(4 / 5)  # TN / (TN + FN)
    assert v("selection_rate", "A", "pos") == pytest.approx(5 / 10)  # (TP + FP) / processed
    # B: TP=1 FN=1 FP=0 TN=5
    assert v("tpr", "B", "pos") == pytest.approx(1 / 2)
    assert v("fpr", "B", "pos") == pytest.approx(0 / 5)
    assert v("ppv", "B", "pos") == pytest.approx(1 / 1)
    assert v("error_rate", "B") == pytest.approx(1 / 7)
    # overall pools both: TP=4 FN=2 FP=2 TN=9, processed 17, one abstention of 18
    assert result.value(metric="tpr", cls="pos") == pytest.approx(4 / 6)
    assert result.value(metric="overall_error") == pytest.approx((1 + 3 + 1) / 18)
    frame = result.to_frame()
    row = frame[(frame.grouping == "site") & (frame.group == "A") & (frame.metric == "tpr")].iloc[0]
    assert row["n"] == 4  # TPR's denominator: the processed positives


def test_multiclass_one_vs_rest_and_macro():
    # 3 classes. confusion (rows true, cols pred):
    #   t0: [2, 1, 0]   t1: [0, 3, 1]   t2: [1, 0, 0]
    pairs = [(0, 0)] * 2 + [(0, 1)] + [(1, 1)] * 3 + [(1, 2)] + [(2, 0)]
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    result = audit_classification(
        y_true=y_true, y_pred=y_pred, groups=pd.DataFrame({"g": ["x"] * len(pairs)}),
        classes=["c0", "c1", "c2"], n_boot=0, n_perm=10,
    )
    v = lambda metric, cls: result.value(metric=metric, cls=cls)
    # recall: c0 = 2/3, c1 = 3/4, c2 = 0/1 -> macro (2/3 + 3/4 + 0) / 3
    assert v("tpr", "c0") == pytest.approx(2 / 3)
    assert v("tpr", "c2") == pytest.approx(0.0)
    assert v("tpr", "macro") == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    # precision: c0 = 2/(2+1), c1 = 3/(1+3), c2 = 0/1
    assert v("ppv", "c1") == pytest.approx(3 / 4)
    # FPR of c2: FP = 1 (a t1 predicted c2), negatives = 8 - 1 = 7
    assert v("fpr", "c2") == pytest.approx(1 / 7)
    assert result.value(metric="accuracy") == pytest.approx(5 / 8)


def test_macro_skips_undefined_classes():
    # class c2 never occurs and is never predicted: its PPV is undefined, not 0
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    result = _audit(y_true, y_pred, pd.DataFrame({"g": ["x"] * 4}))
    parts = rate_components(np.array([[2 - 1, 1, 0], [0, 2, 0]]))
    assert parts["tpr"][0].tolist() == [1, 2]
    # PPV: c0 = 1/1, c1 = 2/3
    assert result.value(metric="ppv", cls="macro") == pytest.approx((1 + 2 / 3) / 2)


def test_undefined_metric_is_nan_with_warning():
    # group B has no positives: its TPR is undefined
    y_true = np.array([1, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0])
    groups = pd.DataFrame({"g": ["A", "A", "B", "B"]})
    with pytest.warns(UndefinedMetricWarning, match="undefined"):
        result = audit_classification(y_true=y_true, y_pred=y_pred, groups=groups, classes=["neg", "pos"],
                                      pos_label=1, n_boot=0, n_perm=10)
    assert math.isnan(result.value(metric="tpr", grouping="g", group="B", cls="pos"))
    assert result.value(metric="fpr", grouping="g", group="B", cls="pos") == pytest.approx(1 / 2)
    assert any("tpr[pos] for g=B" in w for w in result.warnings)


def test_intervals_match_scipy(two_groups):
    result = _audit(*two_groups, pos_label=1)
    row = result.metrics.query("grouping == 'site' and group == 'A' and metric == 'tpr'").iloc[0]
    ci = binomtest(3, 4).proportion_ci(confidence_level=0.95, method="wilson")
    # one failure of 4: the upper bound is the exact Poisson one, 1 - chi2.ppf(0.025, 2) / 8 (Brown, Cai & DasGupta)
    assert (row.lower, row.upper) == pytest.approx((ci.low, 1 - chi2.ppf(0.025, 2) / 8), abs=1e-12)
    cp = _audit(*two_groups, pos_label=1, interval="clopper-pearson")
    row = cp.metrics.query("grouping == 'site' and group == 'A' and metric == 'tpr'").iloc[0]
    ci = binomtest(3, 4).proportion_ci(confidence_level=0.95, method="exact")
    assert (row.lower, row.upper) == pytest.approx((ci.low, ci.high), abs=1e-12)
    lower, upper = proportion_interval([0, 5], [0, 5])
    assert math.isnan(lower[0]) and upper[1] == 1.0


def test_disparities_by_hand(two_groups):
    result = _audit(*two_groups, pos_label=1, reference_groups={"site": "A"})
    d = result.disparities
    tpr = d[(d.metric == "tpr") & (d.grouping == "site")]
    between = tpr[tpr.kind == "between_groups"].iloc[0]
    # TPR: A = 3/4, B = 1/2 -> difference 1/4, ratio (3/4)/(1/2) = 1.5
    assert (between.group, between.other) == ("A", "B")
    assert between.difference == pytest.approx(0.25)
    assert between.ratio == pytest.approx(1.5)
    ref = tpr[tpr.kind == "to_reference"].iloc[0]
    assert (ref.group, ref.other, ref.difference, ref.ratio) == ("B", "A", pytest.approx(-0.25), pytest.approx(2 / 3))
    # tiny counts -> Fisher's exact test on [[1, 1], [3, 1]]
    assert ref.test == "fisher_exact"
    to_overall = tpr[(tpr.kind == "to_overall") & (tpr.group == "B")].iloc[0]
    assert to_overall.difference == pytest.approx(1 / 2 - 4 / 6)
    worst = tpr[tpr.kind == "to_overall_max"].iloc[0]
    # |3/4 - 2/3| = 1/12, |1/2 - 2/3| = 1/6 -> B is furthest; fold max((1/2)/(2/3) inverse) = 4/3
    assert (worst.group, worst.difference, worst.ratio) == ("B", pytest.approx(1 / 6), pytest.approx(4 / 3))
    assert result.significance["family_size"] == int(d.p_value.notna().sum())
    assert set(d.columns) >= {"p_fdr_bh", "p_holm", "significant", "small_group"}


def test_small_groups_flagged_not_dropped(two_groups):
    result = _audit(*two_groups, pos_label=1, min_group_size=8)
    groups = result.groups.set_index(["grouping", "group"])
    assert bool(groups.loc[("site", "B"), "small_group"])  # 7 samples < 8
    assert not bool(groups.loc[("site", "A"), "small_group"])  # 11 samples
    # every between-groups comparison with B in it carries the flag
    between = result.disparities.query("kind == 'between_groups'")
    assert between.small_group.all()


def test_missing_attribute_is_unknown_group():
    y = np.array([0, 1, 1, 0])
    groups = pd.DataFrame({"skin": [1, None, 5, float("nan")]})
    result = _audit(y, y, groups, attributes=[Attribute("skin", scale="fitzpatrick")])
    sizes = result.groups.query("grouping == 'skin'").set_index("group")["n"].to_dict()
    assert sizes == {"lighter": 1, "darker": 1, "unknown": 2}


def test_same_seed_same_bootstrap(two_groups):
    first = _audit(*two_groups, pos_label=1, interval="bootstrap", n_boot=300, seed=7)
    second = _audit(*two_groups, pos_label=1, interval="bootstrap", n_boot=300, seed=7)
    other = _audit(*two_groups, pos_label=1, interval="bootstrap", n_boot=300, seed=8)
    pd.testing.assert_frame_equal(first.metrics, second.metrics)
    assert not first.metrics["lower"].equals(other.metrics["lower"])


def test_stratified_bootstrap_keeps_group_sizes():
    from audit.stats import multinomial_bootstrap

    counts = np.array([[5, 3, 0], [1, 1, 10]])
    draws = multinomial_bootstrap(counts, n_boot=50, seed=0, kind="stratified")
    assert (draws.sum(2) == counts.sum(1)).all()
    plain = multinomial_bootstrap(counts, n_boot=50, seed=0, kind="plain")
    assert (plain.sum((1, 2)) == counts.sum()).all() and (plain.sum(2)[:, 0] != 8).any()
    assert (draws[:, 0, 2] == 0).all()  # an empty cell stays empty


def test_cluster_bootstrap_sums_weighted_units():
    from audit.stats import cluster_bootstrap, cluster_weights

    stats = np.array([[1.0, 2.0], [0.0, 5.0], [3.0, 3.0]])
    weights = cluster_weights(3, n_boot=4, seed=1)
    assert (weights.sum(1) == 3).all()
    np.testing.assert_allclose(cluster_bootstrap(stats, n_boot=4, seed=1), weights @ stats)
    poisson = cluster_weights(3, n_boot=1000, seed=1, method="poisson")
    assert abs(poisson.mean() - 1.0) < 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"interval": "wald"}, "expected interval in ['wilson', 'clopper-pearson', 'bootstrap'], found 'wald'"),
        ({"correction": "bonferroni"}, "expected correction in ['fdr_bh', 'holm'], found 'bonferroni'"),
        ({"alpha": 1.5}, "expected alpha in (0, 1), found 1.5"),
        ({"pos_label": 2}, "expected pos_label in [0, 1], found 2"),
        ({"reference_groups": {"site": "C"}}, "reference_groups['site']: expected one of ['A', 'B'], found 'C'"),
        ({"metrics": ["f1"]}, "expected metrics among"),
    ],
)
def test_bad_arguments_name_what_is_wrong(two_groups, kwargs, message):
    with pytest.raises(StatsInputError) as excinfo:
        _audit(*two_groups, **kwargs)
    assert str(excinfo.value).startswith(message)


def test_bad_labels_and_attribute_values():
    groups = pd.DataFrame({"skin": [1, 7]})
    with pytest.raises(StatsInputError, match=r"^expected y_pred in \[-1, 1\], found 2 at position 1$"):
        _audit(np.array([0, 1]), np.array([0, 2]), groups)
    with pytest.raises(StatsInputError, match=r"^attribute 'skin': row 1: expected a fitzpatrick value in 1..6, found 7$"):
        _audit(np.array([0, 1]), np.array([0, 1]), groups, attributes=[Attribute("skin", scale="fitzpatrick")])


def test_permuted_group_counts_keep_margins_and_mean():
    from audit.stats._significance import permuted_group_counts

    counts = np.array([[5, 0, 3], [1, 4, 2], [0, 6, 9]])
    draws = permuted_group_counts(counts, n_perm=4000, rng=np.random.default_rng(0))
    assert (draws.sum(2) == counts.sum(1)).all()  # group sizes kept: 8, 7, 15
    assert (draws.sum(1) == counts.sum(0)).all()  # cell totals kept: 6, 10, 14
    # under label exchange E[count] = group size * cell total / N, e.g. 8 * 6 / 30 = 1.6
    expected = np.outer(counts.sum(1), counts.sum(0)) / counts.sum()
    np.testing.assert_allclose(draws.mean(0), expected, atol=0.08)


def test_monk_scale_bins_as_declared():
    from audit.stats import bin_attribute

    monk = Attribute("monk", scale="monk", bins={"1-3": [1, 2, 3], "4-7": [4, 5, 6, 7], "8-10": [8, 9, 10]})
    binned = bin_attribute(pd.Series([1, "7", 10.0, None, 4]), monk)
    assert list(binned) == ["1-3", "4-7", "8-10", "unknown", "4-7"]
    assert list(binned.categories) == ["1-3", "4-7", "8-10", "unknown"]
    # the full ten-point scale lists every tone, observed or not, so empty tones show as n = 0
    full = bin_attribute(pd.Series([2, 2, 9]), Attribute("monk", scale="monk"))
    assert list(full.categories) == [str(k) for k in range(1, 11)]
    roman = bin_attribute(pd.Series(["I", "iv", "VI", 2]), Attribute("skin", scale="fitzpatrick"))
    assert list(roman) == ["lighter", "darker", "darker", "lighter"]


def test_results_do_not_depend_on_row_order_or_label_spelling(two_groups):
    y_true, y_pred, groups = two_groups
    order = np.random.default_rng(3).permutation(len(y_true))
    first = _audit(y_true, y_pred, groups, pos_label=1)
    shuffled = _audit(y_true[order], y_pred[order], groups.iloc[order], pos_label=1)
    cols = ["grouping", "group", "metric", "class", "value", "lower", "upper", "n"]
    pd.testing.assert_frame_equal(first.metrics[cols], shuffled.metrics[cols])
    renamed = _audit(y_true, y_pred, groups.replace({"A": "Z", "B": "Y"}), pos_label=1)
    tpr = lambda r, g: r.value(metric="tpr", grouping="site", group=g, cls="pos")
    assert tpr(renamed, "Z") == tpr(first, "A") and tpr(renamed, "Y") == tpr(first, "B")
