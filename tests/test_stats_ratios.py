"""The clustered ratio-of-sums engine used by detection and segmentation audits."""

import numpy as np
import pandas as pd
import pytest

from audit.stats import audit_ratio_metrics, cluster_weights
from audit.stats._ratios import _wald_p

# Six ground-truth people in three images.
#   image  group    matched@0.5  matched@0.75
#   1      darker   1            0
#   1      lighter  1            1
#   2      darker   0            0
#   2      darker   1            1
#   3      lighter  1            1
#   3      lighter  1            0
PEOPLE = pd.DataFrame({
    "image": [1, 1, 2, 2, 3, 3],
    "skin": ["darker", "lighter", "darker", "darker", "lighter", "lighter"],
    "m50": [1, 1, 0, 1, 1, 1],
    "m75": [0, 1, 0, 1, 1, 0],
    "total": [1] * 6,
})
METRICS = {"recall@0.50": [("m50", "total")], "recall@0.75": [("m75", "total")],
           "ar": [("m50", "total"), ("m75", "total")]}


def _audit(**kwargs):
    kwargs.setdefault("n_boot", 200)
    return audit_ratio_metrics(statistics=PEOPLE, metrics=METRICS, groups=PEOPLE[["skin"]], min_group_size=1,
                               **kwargs)


def test_recall_and_ar_by_hand():
    result = _audit(clusters=PEOPLE["image"])
    v = lambda metric, group: result.value(metric=metric, grouping="skin", group=group)
    assert v("recall@0.50", "darker") == pytest.approx(2 / 3)  # matched 1 + 0 + 1 of 3
    assert v("recall@0.50", "lighter") == pytest.approx(3 / 3)
    assert v("recall@0.75", "darker") == pytest.approx(1 / 3)
    assert v("recall@0.75", "lighter") == pytest.approx(2 / 3)
    assert v("ar", "darker") == pytest.approx((2 / 3 + 1 / 3) / 2)  # mean over the two thresholds
    assert result.value(metric="ar") == pytest.approx((5 / 6 + 3 / 6) / 2)
    # recall is a proportion of people: Wilson on the effective n; AR (a mean over thresholds) is bootstrapped
    intervals = result.metrics.groupby("metric")["interval"].agg(set)
    assert intervals["recall@0.50"] == intervals["recall@0.75"] == {"wilson_effective_n"}
    assert intervals["ar"] <= {"cluster_bootstrap_percentile", "cluster_bootstrap_percentile_degenerate_wilson"}
    d = result.disparities.query("metric == 'recall@0.50' and kind == 'between_groups'").iloc[0]
    assert (d.group, d.other, d.difference) == ("lighter", "darker", pytest.approx(1 / 3))
    # darker people sit in 2 images, lighter in 2: one degree of freedom each, so the effective counts are tiny
    # and Fisher's test on them (rounded to 0 units) has nothing to reject
    assert d.test == "fisher_exact_bonferroni_1_pairs" and d.p_value == 1.0


def test_independent_units_get_proportion_intervals():
    result = _audit()
    row = result.metrics.query("grouping == 'skin' and group == 'darker' and metric == 'recall@0.50'").iloc[0]
    assert row.interval == "wilson" and row.n == 3
    assert result.metrics.query("metric == 'ar'")["interval"].eq("bootstrap_percentile").all()


def test_cluster_bootstrap_equals_explicit_image_resampling():
    # the engine's replicate b equals summing each image's statistics times its weight in draw b
    weights = cluster_weights(3, n_boot=50, seed=np.random.default_rng(11))
    per_image = PEOPLE.groupby("image")[["m50", "total"]].sum().to_numpy()  # [[2,2],[1,2],[2,2]]
    expected = weights @ per_image
    # pixel-like counts (not 0/1 per unit), so the metric is bootstrapped rather than a proportion
    pixels = PEOPLE.assign(m50=PEOPLE["m50"] * 2, total=PEOPLE["total"] * 2)
    result = audit_ratio_metrics(statistics=pixels, metrics={"r": [("m50", "total")]}, groups=PEOPLE[["skin"]],
                                 clusters=PEOPLE["image"], n_boot=50, seed=11, min_group_size=1, confidence=0.5)
    overall = result.metrics.query("grouping == 'overall'").iloc[0]
    replicate_recall = expected[:, 0] / expected[:, 1]
    lo, hi = np.nanquantile(replicate_recall, [0.25, 0.75])
    assert (overall.lower, overall.upper) == (pytest.approx(lo), pytest.approx(hi))


def test_segmentation_iou_is_a_ratio_of_sums():
    # per (image, group) intersection and union in pixels: IoU pools sums, it does not average per image
    rows = pd.DataFrame({"image": [1, 2, 3], "group": ["a", "a", "b"], "inter": [50, 10, 30],
                         "union": [100, 100, 40]})
    result = audit_ratio_metrics(statistics=rows, metrics={"iou": [("inter", "union")]}, groups=rows[["group"]],
                                 clusters=rows["image"], n_boot=50, min_group_size=1)
    # a: (50 + 10) / (100 + 100) = 0.3, not the mean of 0.5 and 0.1 (which is also 0.3 here, so check b too)
    assert result.value(metric="iou", grouping="group", group="a") == pytest.approx(60 / 200)
    assert result.value(metric="iou") == pytest.approx(90 / 240)


def test_wald_p_by_hand():
    # replicates alternate 0.1 and 0.3: mean 0.2, SD (ddof=1) = 0.1 * sqrt(100 / 99) = 0.100504
    # difference 0.2 -> z = 0.2 / 0.100504 = 1.98997 -> p = 2 * (1 - Phi(1.98997)) = 0.04659
    replicates = np.array([0.1, 0.3] * 50)
    assert _wald_p(0.2, replicates) == pytest.approx(0.04659, abs=1e-5)
    assert _wald_p(0.0, np.full(10, 0.5)) == 1.0  # no spread and no difference


def test_cluster_bootstrap_covers_correlated_truth():
    # 60 images of 8 people each; each image has its own detectability (strong within-image correlation).
    # The true recall is the mean detectability 0.7. A per-person Wilson interval would be too narrow.
    rng = np.random.default_rng(21)
    covered_cluster = covered_naive = 0
    sims = 300
    for _ in range(sims):
        p_image = rng.beta(2.1, 0.9, 60)  # mean 0.7
        matched = rng.random((60, 8)) < p_image[:, None]
        frame = pd.DataFrame({"m": matched.ravel().astype(float), "t": 1.0, "g": "all"})
        image = np.repeat(np.arange(60), 8)
        clustered = audit_ratio_metrics(statistics=frame, metrics={"r": [("m", "t")]}, groups=frame[["g"]],
                                        clusters=image, n_boot=300, seed=int(rng.integers(1 << 31)),
                                        min_group_size=1).metrics.iloc[0]
        naive = audit_ratio_metrics(statistics=frame, metrics={"r": [("m", "t")]}, groups=frame[["g"]], n_boot=0,
                                    min_group_size=1).metrics.iloc[0]
        covered_cluster += clustered.lower <= 0.7 <= clustered.upper
        covered_naive += naive.lower <= 0.7 <= naive.upper
    assert 0.91 <= covered_cluster / sims <= 0.98
    assert covered_naive / sims < 0.85
