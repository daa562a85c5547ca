"""The vectorised score engine (issue #19): every group of a grouping in one pass.

- Replicates equal, to the bit, those of the per-group implementation it
  replaced (kept below as ``_per_group_reference``), for the same seed.
- A replicate is the weighted Mann-Whitney AUC of its resampled counts:
  equal to scikit-learn's ``roc_auc_score`` with those counts as
  ``sample_weight``, ties counted half.
- Point values equal scikit-learn's ``roc_auc_score`` and ``calibration_curve``
  per group, and hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from audit.stats import Attribute, audit_classification
from audit.stats._scores import (
    _auc_from_counts,
    binary_auc,
    bootstrap_group_scores,
    group_scores,
    score_columns,
    score_levels,
)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _per_group_reference(y_true, scores, confidence, correct, *, n_boot, rng, pos_label, n_bins, levels):
    """``bootstrap_score_metrics`` as it was before #19 (commit ab6370d), but for line breaks: one group per call."""
    m = len(y_true)
    out = {"roc_auc": np.full(n_boot, np.nan), "ece": np.full(n_boot, np.nan)}
    if m == 0 or n_boot == 0:
        return out
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    cell = np.searchsorted(edges[1:-1], confidence) * 2 + correct.astype(np.int64)
    count = np.bincount(cell, minlength=2 * n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(cell, weights=confidence, minlength=2 * n_bins)
                             / np.maximum(count, 1), 0.0)
    draws = rng.multinomial(m, count / m, size=n_boot)
    gap = (draws * (np.tile([0.0, 1.0], n_bins) - mean_conf)).reshape(n_boot, n_bins, 2).sum(-1)
    out["ece"] = np.abs(gap).sum(1) / m
    classes = [pos_label] if pos_label is not None else list(range(scores.shape[1]))
    per_class = []
    for k in classes:
        level = np.searchsorted(levels[k], scores[:, k])
        k_levels = len(levels[k]) + 1
        hist = np.bincount(level * 2 + (y_true == k), minlength=2 * k_levels)
        resampled = rng.multinomial(m, hist / m, size=n_boot).reshape(n_boot, k_levels, 2)
        per_class.append(_auc_from_counts(resampled[..., 1], resampled[..., 0]))
    per_class = np.array(per_class)
    defined = np.isfinite(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["roc_auc"] = np.where(defined.any(0), np.where(defined, per_class, 0).sum(0) / defined.sum(0), np.nan)
    return out


def _data(seed, n, n_classes, *, decimals=None, n_groups=5, empty=()):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y] * rng.random((n, 1))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if decimals is not None:  # ties, as real scores have
        scores = np.round(scores, decimals)
        scores /= scores.sum(1, keepdims=True)
    codes = rng.integers(0, n_groups, n)
    for g in empty:  # groups with no sample
        codes[codes == g] = (g + 1) % n_groups
    return y, scores, codes


CASES = [
    # (seed, n, classes, decimals, pos_label, groups, empty groups)
    (0, 4000, 2, None, 1, 5, ()),  # continuous: > 1,024 distinct values, quantile levels
    (1, 3000, 2, 2, 0, 6, (2,)),  # ties, an empty group
    (2, 3000, 4, None, None, 4, ()),  # macro one-vs-rest
    (3, 500, 3, 1, None, 7, (0, 5)),  # few distinct values, small groups
]


@pytest.mark.parametrize("seed, n, n_classes, decimals, pos_label, n_groups, empty", CASES)
def test_replicates_equal_the_per_group_implementation(seed, n, n_classes, decimals, pos_label, n_groups, empty):
    y, scores, codes = _data(seed, n, n_classes, decimals=decimals, n_groups=n_groups, empty=empty)
    confidence, correct = scores.max(1), scores.argmax(1) == y
    levels = [score_levels(scores[:, k]) for k in range(n_classes)]
    columns = score_columns(y_true=y, scores=scores, confidence=confidence, correct=correct, pos_label=pos_label,
                            n_bins=10)
    ours_rng = np.random.default_rng(9)
    ours = bootstrap_group_scores(columns, codes=codes, n_groups=n_groups, n_boot=300, rng=ours_rng)
    rng = np.random.default_rng(9)
    for g in range(n_groups):
        members = np.flatnonzero(codes == g)
        reference = _per_group_reference(y[members], scores[members], confidence[members],
                                         correct[members].astype(float), n_boot=300, rng=rng, pos_label=pos_label,
                                         n_bins=10, levels=levels)
        for metric in ("roc_auc", "ece"):
            np.testing.assert_array_equal(ours[metric][:, g], reference[metric], err_msg=f"{metric}, group {g}")
    assert np.isnan(ours["roc_auc"][:, list(empty)]).all() and np.isnan(ours["ece"][:, list(empty)]).all()
    # the generator is left where the per-group loop left it: later draws (permutation tests) are unchanged too
    assert ours_rng.bit_generator.state == rng.bit_generator.state


class _Recorder:
    """A generator that records every multinomial draw it hands out."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.draws = []

    def multinomial(self, n, pvals, size):
        out = self.rng.multinomial(n, pvals, size=size)
        self.draws.append(out)
        return out


def test_a_replicate_is_sklearns_auc_on_the_resampled_counts():
    # scores rounded to 2 decimals: every level is one distinct value, so the counts are exact
    y, scores, codes = _data(5, 2000, 2, decimals=2, n_groups=3)
    columns = score_columns(y_true=y, scores=scores, confidence=scores.max(1), correct=scores.argmax(1) == y,
                            pos_label=1, n_bins=10)
    edges = score_levels(scores[:, 1])
    assert columns.n_levels == (len(edges) + 1,)
    rng = _Recorder(3)
    ours = bootstrap_group_scores(columns, codes=codes, n_groups=3, n_boot=40, rng=rng)
    assert len(rng.draws) == 3 * 2  # per group: the ECE cells, then the (level, label) cells
    value = np.append(edges, edges[-1] + 1.0)  # the score of each level index (the last one is never used)
    for g in range(3):
        auc_draws = rng.draws[2 * g + 1].reshape(40, -1, 2)  # (resample, level, label)
        for b in range(40):
            weights = auc_draws[b].T.ravel()  # negatives at every level, then positives
            labels = np.repeat([0, 1], len(value))
            expected = roc_auc_score(labels, np.tile(value, 2), sample_weight=weights)
            assert ours["roc_auc"][b, g] == pytest.approx(expected, abs=1e-12)


def test_ece_replicate_by_hand():
    # one group, n_bins = 2; cells (bin, correct): (0, 1) conf 0.3, (0, 0) conf 0.4, (1, 1) conf 0.9
    # a draw puts counts c01, c00, c11 (total 3) on them; ECE = (|c01 - 0.3 c01 - 0.4 c00| + |c11 - 0.9 c11|) / 3
    columns = score_columns(y_true=np.array([1, 0, 1]), scores=np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]]),
                            confidence=np.array([0.3, 0.4, 0.9]), correct=np.array([True, False, True]),
                            pos_label=1, n_bins=2)
    rng = _Recorder(0)
    ours = bootstrap_group_scores(columns, codes=np.zeros(3, dtype=int), n_groups=1, n_boot=20, rng=rng)
    cells = rng.draws[0]  # (20, 4): (bin 0, wrong), (bin 0, right), (bin 1, wrong), (bin 1, right)
    expected = (np.abs(cells[:, 1] - 0.3 * cells[:, 1] - 0.4 * cells[:, 0])
                + np.abs(cells[:, 3] - 0.9 * cells[:, 3])) / 3
    np.testing.assert_allclose(ours["ece"][:, 0], expected, atol=1e-12)


def test_group_points_by_hand():
    # rows interleave the groups; n_bins = 2 (bins [0, 0.5], (0.5, 1])
    #   group 0: scores 0.1 0.4 0.4 0.8, labels 0 1 0 1: positives 0.4, 0.8 against negatives 0.1, 0.4
    #            pairs (0.4, 0.1) 1, (0.4, 0.4) 1/2, (0.8, 0.1) 1, (0.8, 0.4) 1 -> AUC = 3.5 / 4 = 0.875
    #   group 1: scores 0.3 0.2 0.9, labels 1 0 0: positive 0.3 beats 0.2, loses to 0.9 -> AUC = 1 / 2
    #   group 2: labels 1 1: no negative -> AUC undefined
    codes = np.array([0, 1, 0, 2, 1, 0, 1, 0, 2])
    score = np.array([0.1, 0.3, 0.4, 0.6, 0.2, 0.4, 0.9, 0.8, 0.7])
    label = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1])
    # confidence and correctness, chosen for ECE:
    #   group 0: conf 0.3 0.4 (bin 0, 1 of 2 right) and 0.9 0.9 (bin 1, both right)
    #            ECE = 2/4 |1/2 - 0.35| + 2/4 |1 - 0.9| = 0.075 + 0.05 = 0.125
    #   group 1: conf 0.6 0.7 0.8, none right: ECE = |0 - 0.7| = 0.7
    #   group 2: conf 1.0 1.0, both right: ECE = 0
    confidence = np.array([0.3, 0.6, 0.4, 1.0, 0.7, 0.9, 0.8, 0.9, 1.0])
    correct = np.array([1, 0, 0, 1, 0, 1, 0, 1, 1], dtype=bool)
    scores = np.stack([1 - score, score], 1)
    columns = score_columns(y_true=label, scores=scores, confidence=confidence, correct=correct, pos_label=1, n_bins=2)
    points = group_scores(columns, codes=codes, n_groups=4)
    np.testing.assert_allclose(points["roc_auc"][:2], [0.875, 0.5], atol=1e-15)
    assert np.isnan(points["roc_auc"][2:]).all()  # group 2 one class, group 3 empty
    np.testing.assert_allclose(points["ece"][:3], [0.125, 0.7, 0.0], atol=1e-15)
    assert np.isnan(points["ece"][3])
    np.testing.assert_array_equal(points["n"], [4, 3, 2, 0])
    np.testing.assert_array_equal(points["bin_count"], [[2, 2], [0, 3], [0, 2], [0, 0]])
    np.testing.assert_allclose(points["bin_confidence"][0], [0.35, 0.9])
    np.testing.assert_allclose(points["bin_accuracy"][0], [0.5, 1.0])


@pytest.mark.parametrize("seed, n, n_classes, decimals, pos_label, n_groups, empty", CASES)
def test_group_points_equal_sklearn(seed, n, n_classes, decimals, pos_label, n_groups, empty):
    y, scores, codes = _data(seed, n, n_classes, decimals=decimals, n_groups=n_groups, empty=empty)
    confidence, correct = scores.max(1), scores.argmax(1) == y
    columns = score_columns(y_true=y, scores=scores, confidence=confidence, correct=correct, pos_label=pos_label,
                            n_bins=10)
    points = group_scores(columns, codes=codes, n_groups=n_groups)
    for g in range(n_groups):
        rows = codes == g
        if not rows.any():
            assert np.isnan(points["roc_auc"][g]) and np.isnan(points["ece"][g])
            continue
        if pos_label is not None:
            expected = roc_auc_score(y[rows] == pos_label, scores[rows, pos_label])
        else:
            present = [k for k in range(n_classes) if 0 < (y[rows] == k).sum() < rows.sum()]
            expected = np.mean([roc_auc_score(y[rows] == k, scores[rows, k]) for k in present])
        assert points["roc_auc"][g] == pytest.approx(expected, abs=1e-12)
        prob_true, prob_pred = calibration_curve(correct[rows], confidence[rows], n_bins=10, strategy="uniform")
        filled = points["bin_count"][g] > 0
        np.testing.assert_allclose(points["bin_accuracy"][g, filled], prob_true, atol=1e-12)
        np.testing.assert_allclose(points["bin_confidence"][g, filled], prob_pred, atol=1e-12)
        # ECE = sum over bins of (n_b / n) |accuracy_b - confidence_b|
        expected_ece = np.sum(points["bin_count"][g, filled] / rows.sum() * np.abs(prob_true - prob_pred))
        assert points["ece"][g] == pytest.approx(expected_ece, abs=1e-12)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.25, 0.5, 0.5001, 0.75, 1.0]), st.booleans()),
                min_size=1, max_size=40))
def test_group_auc_equals_sklearn_on_any_ties(rows):
    codes = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows])
    label = np.array([r[2] for r in rows])
    columns = score_columns(y_true=label.astype(int), scores=np.stack([1 - score, score], 1),
                            confidence=np.maximum(score, 1 - score), correct=label, pos_label=1, n_bins=4)
    auc = group_scores(columns, codes=codes, n_groups=4)["roc_auc"]
    for g in range(4):
        rows_g = codes == g
        if 0 < label[rows_g].sum() < rows_g.sum():
            assert auc[g] == pytest.approx(roc_auc_score(label[rows_g], score[rows_g]), abs=1e-12)
            assert binary_auc(label[rows_g], score[rows_g]) == pytest.approx(auc[g], abs=1e-15)
        else:
            assert np.isnan(auc[g])


def test_audit_score_replicates_follow_the_per_group_draws():
    """Through the engine: the overall grouping's replicates are the per-group reference's, after the rate draws."""
    y, scores, codes = _data(6, 1200, 2, decimals=3, n_groups=3)
    groups = pd.DataFrame({"g": np.array(["a", "b", "c"])[codes]})
    result = audit_classification(y_true=y, y_pred=scores.argmax(1), groups=groups, classes=["n", "p"], pos_label=1,
                                  scores=scores, n_boot=200, n_perm=10, attributes=[Attribute("g")],
                                  interval="bootstrap", disparity_metrics=("tpr",), seed=4)
    auc = result.metrics.query("metric == 'roc_auc' and grouping == 'overall'").iloc[0]
    # replay the engine's generator: the rate bootstrap draws first, then the overall group's score draws
    from audit.stats._bootstrap import multinomial_bootstrap
    from audit.stats._rates import confusion_cells

    rng = np.random.default_rng(4)
    cells = confusion_cells(y, scores.argmax(1), n_classes=2)
    flat = np.bincount(codes * 6 + cells, minlength=18).reshape(3, 6)
    multinomial_bootstrap(flat, n_boot=200, seed=rng, kind="plain")
    levels = [score_levels(scores[:, k]) for k in range(2)]
    reference = _per_group_reference(y, scores, scores.max(1), (scores.argmax(1) == y).astype(float), n_boot=200,
                                     rng=rng, pos_label=1, n_bins=10, levels=levels)
    tail = (1.0 - 0.95) / 2.0  # as audit.stats._intervals.percentile_interval computes it
    lower, upper = np.nanquantile(reference["roc_auc"], [tail, 1.0 - tail])
    assert auc.value == pytest.approx(roc_auc_score(y, scores[:, 1]), abs=1e-12)
    assert (auc.lower, auc.upper) == (lower, upper)
