"""Point estimates equal fairlearn's MetricFrame on identical, randomised inputs."""

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score, recall_score

from audit.stats import Attribute, UndefinedMetricWarning, audit_classification

TOL = 1e-12
pytestmark = pytest.mark.filterwarnings("ignore:Supplied 'func' had no __name__")


def _data(seed, n, n_classes):
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "gender": rng.choice(["female", "male", "non_binary"], n, p=[0.45, 0.45, 0.1]),
        "skin": rng.integers(1, 7, n),
        "age": rng.choice(["young", "middle", "older"], n),
    })
    y_true = rng.integers(0, n_classes, n)
    # group-dependent accuracy so that disparities are not all zero
    accuracy = np.where(groups["skin"] >= 4, 0.6, 0.85)
    y_pred = np.where(rng.random(n) < accuracy, y_true, rng.integers(0, n_classes, n))
    return y_true, y_pred, groups


def _ours(y_true, y_pred, groups, n_classes, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return audit_classification(
            y_true=y_true, y_pred=y_pred, groups=groups, classes=[f"c{k}" for k in range(n_classes)],
            attributes=[Attribute("gender"), Attribute("skin", scale="fitzpatrick"), Attribute("age")],
            # point estimates only: no bootstrap, no permutation tests
            intersections=[("gender", "skin"), ("gender", "skin", "age")], n_boot=0, n_perm=0,
            disparity_metrics=("accuracy", "tpr", "fpr", "fnr", "tnr", "selection_rate", "ppv"), **kwargs,
        )


def _binned(groups):
    out = groups.copy()
    out["skin"] = np.where(groups["skin"] <= 3, "lighter", "darker")
    return out


def _compare(ours, frame: MetricFrame, grouping, metric, cls):
    rows = ours.metrics[(ours.metrics.grouping == grouping) & (ours.metrics.metric == metric)
                        & (ours.metrics["class"] == cls)].set_index("group")["value"]
    by_group = frame.by_group
    for key, expected in by_group.items():
        label = " × ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        np.testing.assert_allclose(rows[label], expected, atol=TOL, equal_nan=True, err_msg=f"{grouping}={label}")
    assert len(rows) == len(by_group)
    np.testing.assert_allclose(ours.value(metric=metric, cls=cls), frame.overall, atol=TOL)
    d = ours.disparities[(ours.disparities.grouping == grouping) & (ours.disparities.metric == metric)
                         & (ours.disparities["class"] == cls)]
    between = d[d.kind == "between_groups"].iloc[0]
    to_overall = d[d.kind == "to_overall_max"].iloc[0]
    np.testing.assert_allclose(between.difference, frame.difference(method="between_groups"), atol=TOL)
    np.testing.assert_allclose(to_overall.difference, frame.difference(method="to_overall"), atol=TOL)
    # our ratios are >= 1 (how many times worse); fairlearn's are the reciprocals, <= 1
    np.testing.assert_allclose(1 / between.ratio, frame.ratio(method="between_groups"), atol=TOL)
    np.testing.assert_allclose(1 / to_overall.ratio, frame.ratio(method="to_overall"), atol=TOL)
    np.testing.assert_allclose(rows.min(), frame.group_min(), atol=TOL)
    np.testing.assert_allclose(rows.max(), frame.group_max(), atol=TOL)


BINARY_METRICS = {
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "fnr": false_negative_rate,
    "tnr": true_negative_rate,
    "selection_rate": selection_rate,
    "ppv": functools.partial(precision_score, zero_division=np.nan),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("grouping", ["gender", "skin", "gender × skin", "gender × skin × age"])
def test_binary_matches_metricframe(seed, grouping):
    y_true, y_pred, groups = _data(seed, 3000, 2)
    ours = _ours(y_true, y_pred, groups, 2, pos_label=1)
    features = _binned(groups)[grouping.split(" × ")]
    for metric, function in {**BINARY_METRICS, "accuracy": accuracy_score}.items():
        frame = MetricFrame(metrics=function, y_true=y_true, y_pred=y_pred, sensitive_features=features)
        _compare(ours, frame, grouping, metric, "" if metric == "accuracy" else "c1")


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("grouping", ["gender", "gender × skin"])
def test_multiclass_matches_metricframe(seed, grouping):
    n_classes = 4
    y_true, y_pred, groups = _data(seed, 2500, n_classes)
    ours = _ours(y_true, y_pred, groups, n_classes)
    features = _binned(groups)[grouping.split(" × ")]
    labels = list(range(n_classes))
    for k in labels:
        recall_k = functools.partial(recall_score, labels=[k], average="macro", zero_division=np.nan)
        precision_k = functools.partial(precision_score, labels=[k], average="macro", zero_division=np.nan)
        for metric, function in (("tpr", recall_k), ("ppv", precision_k)):
            frame = MetricFrame(metrics=function, y_true=y_true, y_pred=y_pred, sensitive_features=features)
            _compare(ours, frame, grouping, metric, f"c{k}")
    for metric, function in (("tpr", recall_score), ("ppv", precision_score)):
        macro = functools.partial(function, labels=labels, average="macro", zero_division=np.nan)
        frame = MetricFrame(metrics=macro, y_true=y_true, y_pred=y_pred, sensitive_features=features)
        _compare(ours, frame, grouping, metric, "macro")
    frame = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=features)
    _compare(ours, frame, grouping, "accuracy", "")
