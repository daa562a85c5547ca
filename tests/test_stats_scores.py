"""ROC AUC and calibration per group against scikit-learn on identical inputs."""

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from audit.stats import audit_classification, expected_calibration_error, roc_auc


def _data(seed, n, n_classes):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y_true] * rng.random((n, 1))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = np.round(scores, 2)  # ties, as real scores have
    scores /= scores.sum(1, keepdims=True)
    groups = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n)})
    return y_true, scores.argmax(1), scores, groups


def test_binary_auc_and_ece_match_sklearn():
    y_true, y_pred, scores, groups = _data(0, 1500, 2)
    result = audit_classification(y_true=y_true, y_pred=y_pred, groups=groups, classes=["n", "p"], pos_label=1,
                                  scores=scores, n_boot=50, n_perm=20)
    for label in ["a", "b", "c"]:
        rows = (groups.g == label).to_numpy()
        expected_auc = roc_auc_score(y_true[rows], scores[rows, 1])
        assert result.value(metric="roc_auc", grouping="g", group=label) == pytest.approx(expected_auc, abs=1e-12)
        confidence = scores[rows].max(1)
        correct = (y_pred[rows] == y_true[rows]).astype(float)
        prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=10, strategy="uniform")
        bins = result.reliability.query("grouping == 'g' and group == @label and count > 0")
        np.testing.assert_allclose(bins["accuracy"], prob_true, atol=1e-12)
        np.testing.assert_allclose(bins["mean_confidence"], prob_pred, atol=1e-12)
        # ECE = sum over bins of (n_b / n) |accuracy_b - confidence_b|
        expected_ece = np.sum(bins["count"] / rows.sum() * np.abs(bins["accuracy"] - bins["mean_confidence"]))
        assert result.value(metric="ece", grouping="g", group=label) == pytest.approx(expected_ece, abs=1e-12)


def test_multiclass_auc_is_sklearn_macro_ovr():
    y_true, _, scores, _ = _data(1, 800, 4)
    assert roc_auc(y_true, scores, pos_label=None) == pytest.approx(
        roc_auc_score(y_true, scores, multi_class="ovr", average="macro"), abs=1e-12)


def test_ece_by_hand():
    # bins of width 0.5: [0.3, 0.4] -> conf 0.35, acc 1/2; [0.9] -> conf 0.9, acc 1
    # ECE = 2/3 * |0.5 - 0.35| + 1/3 * |1 - 0.9| = 0.1 + 1/30
    value = expected_calibration_error(np.array([0.3, 0.4, 0.9]), np.array([1.0, 0.0, 1.0]), n_bins=2)
    assert value == pytest.approx(2 / 3 * 0.15 + 1 / 3 * 0.1)


def test_score_disparities_are_tested_by_permutation():
    y_true, y_pred, scores, groups = _data(2, 600, 2)
    # make group c's scores uninformative: its AUC drops to about 0.5
    noise = np.random.default_rng(0).random(600)
    c = (groups.g == "c").to_numpy()
    scores[c, 1] = noise[c]
    scores[c, 0] = 1 - noise[c]
    result = audit_classification(y_true=y_true, y_pred=scores.argmax(1), groups=groups, classes=["n", "p"],
                                  pos_label=1, scores=scores, n_boot=100, n_perm=200,
                                  disparity_metrics=("roc_auc", "ece"), reference_groups={"g": "a"})
    d = result.disparities
    auc = d[(d.metric == "roc_auc") & (d.kind == "to_reference") & (d.group == "c")].iloc[0]
    assert auc.test == "permutation" and auc.difference < -0.2 and auc.p_value < 0.01
    between = d[(d.metric == "roc_auc") & (d.kind == "between_groups")].iloc[0]
    assert between.other == "c" and between.p_value < 0.01


def test_count_based_auc_bootstrap_matches_row_bootstrap():
    from audit.stats._scores import _auc_from_counts, bootstrap_score_metrics, score_levels

    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.45 + 0.15 * y, 0.2), 0, 1)  # continuous: > 1,024 distinct values
    probs = np.stack([1 - scores, scores], 1)
    levels = [score_levels(probs[:, 0]), score_levels(probs[:, 1])]
    # with distinct values as levels the histogram AUC is the exact AUC
    few = np.round(scores, 2)
    edges = score_levels(few)
    level = np.searchsorted(edges, few)
    pos = np.bincount(level[y == 1], minlength=len(edges) + 1)
    neg = np.bincount(level[y == 0], minlength=len(edges) + 1)
    assert _auc_from_counts(pos, neg) == pytest.approx(roc_auc_score(y, few), abs=1e-12)
    confidence = probs.max(1)
    correct = (probs.argmax(1) == y).astype(float)
    counts = bootstrap_score_metrics(y, probs, confidence, correct, n_boot=2000, rng=rng, pos_label=1, n_bins=10,
                                     levels=levels)
    rows = [rng.integers(0, n, n) for _ in range(400)]
    row_auc = np.array([roc_auc_score(y[r], scores[r]) for r in rows])
    row_ece = np.array([expected_calibration_error(confidence[r], correct[r], n_bins=10) for r in rows])
    # same sampling spread (within 15%, the Monte-Carlo error of 400 row replicates is about 4%)
    assert counts["roc_auc"].std() == pytest.approx(row_auc.std(), rel=0.15)
    assert counts["ece"].std() == pytest.approx(row_ece.std(), rel=0.15)
    assert counts["roc_auc"].mean() == pytest.approx(roc_auc_score(y, scores), abs=0.002)
