"""The engine on per-cell counts equals the engine on per-sample rows, number for number.

A table of distinct (attribute values, true class, predicted class) with a count per row is a sufficient
statistic for every rate metric: the bootstrap draws one multinomial over the same cell counts and the
permutation tests permute the same counts, so with the same seed the intervals and p-values are the same too.
Score metrics (AUC, ECE) still need each sample's scores: ``score_rows`` names each scored sample's row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from audit.errors import StatsInputError
from audit.stats import Attribute, audit_classification

ATTRIBUTES = [Attribute("skin", scale="fitzpatrick"), Attribute("gender"), Attribute("age", scale="ordinal",
                                                                                     order=["young", "old"])]
INTERSECTIONS = [("gender", "skin"), ("gender", "skin", "age")]
CLASSES = ["a", "b", "c"]


def _rows(n=20_000, seed=1):
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "skin": rng.integers(1, 7, n).astype(object),
        "gender": rng.choice(np.array(["f", "m", None], dtype=object), n),
        "age": rng.choice(np.array(["young", "old"], dtype=object), n),
    })
    y_true = rng.integers(0, 3, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, rng.integers(-1, 3, n))  # -1: abstentions
    scores = rng.dirichlet([1, 1, 1], n)
    return groups, y_true, y_pred, scores


def _cells(groups, y_true, y_pred):
    """Distinct (attributes, y_true, y_pred) rows with their counts, and each sample's row."""
    key = pd.MultiIndex.from_frame(pd.DataFrame({**groups.astype(str), "y": y_true, "p": y_pred}))
    row_of_sample, _ = pd.factorize(key)
    first = np.unique(row_of_sample, return_index=True)[1]
    return (groups.iloc[first].reset_index(drop=True), y_true[first], y_pred[first],
            np.bincount(row_of_sample), row_of_sample)


def _audit(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return audit_classification(attributes=ATTRIBUTES, intersections=INTERSECTIONS, classes=CLASSES,
                                    reference_groups={"skin": "lighter"}, seed=3, **kwargs)


def _assert_same(one, two):
    for name in ("metrics", "disparities", "groups", "reliability"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True)
    assert one.config == two.config


@pytest.mark.parametrize("bootstrap", ["plain", "stratified"])
def test_counts_equal_rows(bootstrap):
    groups, y_true, y_pred, _ = _rows()
    cells, t, p, counts, _ = _cells(groups, y_true, y_pred)
    assert len(cells) < len(groups) / 10  # the point: far fewer rows
    options = {"n_boot": 300, "n_perm": 300, "bootstrap": bootstrap, "interval": "wilson"}
    _assert_same(_audit(y_true=y_true, y_pred=y_pred, groups=groups, **options),
                 _audit(y_true=t, y_pred=p, groups=cells, counts=counts, **options))


def test_counts_with_scores_equal_rows():
    groups, y_true, y_pred, scores = _rows(n=6_000)
    cells, t, p, counts, row_of_sample = _cells(groups, y_true, y_pred)
    options = {"n_boot": 40, "n_perm": 40, "scores": scores}
    rows = _audit(y_true=y_true, y_pred=y_pred, groups=groups, **options)
    counted = _audit(y_true=t, y_pred=p, groups=cells, counts=counts, score_rows=row_of_sample, **options)
    _assert_same(rows, counted)
    assert (rows.metrics["metric"] == "roc_auc").any() and len(rows.reliability)


def test_counts_checked():
    groups, y_true, y_pred, scores = _rows(n=500)
    cells, t, p, counts, row_of_sample = _cells(groups, y_true, y_pred)
    cases = [
        ({"counts": counts[:-1]}, "expected counts to be"),
        ({"counts": counts.astype(float)}, "expected counts to be"),
        ({"counts": np.where(np.arange(len(counts)) == 2, 0, counts)}, "expected counts >= 1, found 0 at position 2"),
        ({"counts": counts, "scores": scores}, "expected score_rows"),
        ({"counts": counts, "scores": scores, "score_rows": row_of_sample[:-1]},
         "expected score_rows to name every row as often as its count"),
        ({"score_rows": row_of_sample}, "expected score_rows only with counts"),
    ]
    for extra, message in cases:
        with pytest.raises(StatsInputError, match=message):
            _audit(y_true=t, y_pred=p, groups=cells, n_boot=0, n_perm=0, **extra)


def test_dataset_statistics_from_counts_equal_rows():
    """Composition, missing rates and label co-occurrence: a distinct row weighted by its count equals its samples."""
    from audit.stats import composition, cooccurrence, missing_rates

    groups, y_true, y_pred, _ = _rows(n=5_000)
    cells, t, _, counts, _ = _cells(groups, y_true, y_pred)
    pd.testing.assert_frame_equal(composition(groups, ATTRIBUTES, INTERSECTIONS),
                                  composition(cells, ATTRIBUTES, INTERSECTIONS, weights=counts))
    pd.testing.assert_frame_equal(missing_rates(groups, ATTRIBUTES), missing_rates(cells, ATTRIBUTES, weights=counts))
    for one, two in zip(cooccurrence(y_true, CLASSES, groups, ATTRIBUTES, INTERSECTIONS),
                        cooccurrence(t, CLASSES, cells, ATTRIBUTES, INTERSECTIONS, weights=counts)):
        pd.testing.assert_frame_equal(one, two)
    with pytest.raises(StatsInputError, match="expected weights to be"):
        composition(cells, ATTRIBUTES, weights=counts[:-1])
