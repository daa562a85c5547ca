"""Segmentation statistics: per-image counts, both pooling conventions against their libraries, people."""

import numpy as np
import pandas as pd
import pytest

from audit.errors import StatsInputError
from audit.stats import (
    audit_segmentation,
    cluster_weights,
    person_region_counts,
    segmentation_counts,
)

CLASSES = ["background", "person", "car"]


def _random_masks(n=6, size=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, (n, size, size)).astype(np.uint8)
    pred = np.where(rng.random((n, size, size)) < 0.6, label, rng.integers(0, classes, (n, size, size))).astype(np.uint8)
    label[:, 0, :3] = 255  # ignored pixels
    label[1][label[1] == 2] = 0  # class 2 absent from image 1's label ...
    pred[1][pred[1] == 2] = 1  # ... and from its prediction: undefined there
    label[2][label[2] == 1] = 0  # class 1 only predicted in image 2 (IoU 0)
    return label, pred


def _audit(label, pred, groups=None, **kwargs):
    inter, pred_area, label_area = segmentation_counts(label, pred, len(CLASSES))
    groups = pd.DataFrame({"g": ["a", "b"] * (len(label) // 2)}) if groups is None else groups
    kwargs.setdefault("n_boot", 50)
    return audit_segmentation(intersection=inter, pred_area=pred_area, label_area=label_area, groups=groups,
                              classes=CLASSES, min_group_size=1, **kwargs)


def test_counts_by_hand():
    # label     pred      (255 ignored; pred 255 = no prediction)
    # 0 0 1     0 1 1
    # 255 2 1   0 2 255
    label = np.array([[0, 0, 1], [255, 2, 1]])
    pred = np.array([[0, 1, 1], [0, 2, 255]])
    inter, pred_area, label_area = segmentation_counts(label, pred, 3)
    # class 0: label 2 px, pred 2 px (the ignored pixel's pred does not count), intersection 1
    # class 1: label 2, pred 2, intersection 1; class 2: label 1, pred 1, intersection 1
    assert inter.tolist() == [1, 1, 1]
    assert pred_area.tolist() == [1, 2, 1]
    assert label_area.tolist() == [2, 2, 1]
    # union = pred + label - inter: 2, 3, 1 -> IoU 1/2, 1/3, 1; pooled = per-image for one image
    result = _audit(label[None], pred[None], groups=pd.DataFrame({"g": ["a"]}), n_boot=0)
    assert result.value(metric="iou_pooled", cls="person") == pytest.approx(1 / 3)
    assert result.value(metric="miou_pooled") == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    assert result.value(metric="pixel_accuracy_pooled") == pytest.approx(3 / 5)  # 3 correct of 5 labelled
    assert result.value(metric="dice_pooled", cls="background") == pytest.approx(2 * 1 / (1 + 2))


def test_counts_reject_unknown_label_values():
    with pytest.raises(StatsInputError, match="expected label values in 0..2 or ignore_index 255, found 7"):
        segmentation_counts(np.array([[0, 7]]), np.array([[0, 0]]), 3)
    with pytest.raises(StatsInputError, match="same shape"):
        segmentation_counts(np.zeros((2, 2)), np.zeros((2, 3)), 3)


def _one_hot_ignoring(mask, label, classes):
    """One-hot (N, C, H, W) with all-zero vectors on ignored pixels: they join no intersection or union."""
    import torch

    keep = torch.from_numpy(label != 255)
    safe = torch.from_numpy(np.where(mask < classes, mask, 0).astype(np.int64))
    hot = torch.nn.functional.one_hot(safe, classes).movedim(-1, 1)
    return hot * keep[:, None]


def test_per_image_convention_equals_torchmetrics_meaniou():
    torchmetrics = pytest.importorskip("torchmetrics")
    import torchmetrics.segmentation  # noqa: F401 (not imported by the package itself)
    label, pred = _random_masks()
    result = _audit(label, pred, n_boot=0)
    preds, target = _one_hot_ignoring(pred, label, 3), _one_hot_ignoring(label, label, 3)
    per_class = torchmetrics.segmentation.MeanIoU(num_classes=3, per_class=True)
    per_class.update(preds[:4], target[:4])  # in two batches, as a loader would feed it
    per_class.update(preds[4:], target[4:])
    overall = torchmetrics.segmentation.MeanIoU(num_classes=3, per_class=False)
    overall.update(preds, target)
    for j, name in enumerate(CLASSES):
        assert result.value(metric="iou_per_image", cls=name) == pytest.approx(float(per_class.compute()[j]), abs=1e-6)
    assert result.value(metric="miou_per_image") == pytest.approx(float(overall.compute()), abs=1e-6)
    # per group: the same library on that group's images only
    group_b = torchmetrics.segmentation.MeanIoU(num_classes=3)
    group_b.update(preds[1::2], target[1::2])
    assert result.value(metric="miou_per_image", grouping="g", group="b") == pytest.approx(
        float(group_b.compute()), abs=1e-6)


def test_dice_equals_torchmetrics_dicescore_both_conventions():
    torchmetrics = pytest.importorskip("torchmetrics")
    import torchmetrics.segmentation  # noqa: F401 (not imported by the package itself)
    label, pred = _random_masks(seed=3)
    result = _audit(label, pred, n_boot=0)
    preds, target = _one_hot_ignoring(pred, label, 3), _one_hot_ignoring(label, label, 3)
    samplewise = torchmetrics.segmentation.DiceScore(num_classes=3, average="none", aggregation_level="samplewise")
    samplewise.update(preds, target)
    pooled = torchmetrics.segmentation.DiceScore(num_classes=3, average="macro", aggregation_level="global")
    pooled.update(preds, target)
    for j, name in enumerate(CLASSES):
        assert result.value(metric="dice_per_image", cls=name) == pytest.approx(float(samplewise.compute()[j]), abs=1e-6)
    assert result.value(metric="mdice_pooled") == pytest.approx(float(pooled.compute()), abs=1e-6)


def _mmseg_iou_metric(label, pred, num_classes, ignore_index=255):
    """mmseg's IoUMetric, written out: per-image areas by histogram, summed, then
    ``IoU = total_area_intersect / total_area_union``, ``mIoU = nanmean(IoU)``,
    ``aAcc = total_area_intersect.sum() / total_area_label.sum()``, ``Dice = 2 I / (P + L)``
    (mmsegmentation, mmseg/evaluation/metrics/iou_metric.py: ``intersect_and_union`` and
    ``total_area_to_metrics``). mmseg needs mmcv, which has no wheel here, so the formula is reproduced."""
    totals = np.zeros((4, num_classes))
    for lab, prd in zip(label, pred):
        keep = lab != ignore_index
        lab, prd = lab[keep].astype(float), prd[keep].astype(float)
        hist = lambda x: np.histogram(x, bins=num_classes, range=(0, num_classes - 1))[0]  # noqa: E731 (torch.histc)
        area_i, area_p, area_l = hist(prd[prd == lab]), hist(prd), hist(lab)
        totals += [area_i, area_p + area_l - area_i, area_p, area_l]
    inter, union, pred_area, label_area = totals
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
        dice = 2 * inter / (pred_area + label_area)
    return {"IoU": iou, "mIoU": np.nanmean(iou), "aAcc": inter.sum() / label_area.sum(), "mDice": np.nanmean(dice)}


def test_pooled_convention_equals_mmseg_and_torchmetrics_jaccard():
    label, pred = _random_masks(seed=5)
    label[:, :, -1] = 1  # make every class appear somewhere in the group of even images
    result = _audit(label, pred, n_boot=0)
    reference = _mmseg_iou_metric(label, pred, 3)
    for j, name in enumerate(CLASSES):
        assert result.value(metric="iou_pooled", cls=name) == pytest.approx(reference["IoU"][j])
    assert result.value(metric="miou_pooled") == pytest.approx(reference["mIoU"])
    assert result.value(metric="pixel_accuracy_pooled") == pytest.approx(reference["aAcc"])
    assert result.value(metric="mdice_pooled") == pytest.approx(reference["mDice"])
    even = _mmseg_iou_metric(label[0::2], pred[0::2], 3)
    assert result.value(metric="miou_pooled", grouping="g", group="a") == pytest.approx(even["mIoU"])
    # torchmetrics' multiclass Jaccard index accumulates one confusion matrix over the data set: pooled too
    torchmetrics = pytest.importorskip("torchmetrics")
    import torchmetrics.segmentation  # noqa: F401 (not imported by the package itself)
    import torch

    jaccard = torchmetrics.classification.MulticlassJaccardIndex(num_classes=3, average="none", ignore_index=255)
    jaccard.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(label.astype(np.int64)))
    assert [result.value(metric="iou_pooled", cls=c) for c in CLASSES] == pytest.approx(
        jaccard.compute().tolist(), abs=1e-6)


def test_the_two_conventions_differ_and_absent_classes_are_skipped():
    # image 1: a big image where class 1 is perfect; image 2: a small one where it is poor
    label = np.zeros((2, 10, 10), dtype=np.uint8)
    pred = np.zeros_like(label)
    label[0, :5] = 1
    pred[0, :5] = 1  # I=50, U=50
    label[1, 0, :2] = 1
    pred[1, 0, 1:4] = 1  # I=1, U=4
    from audit.stats import UndefinedMetricWarning

    with pytest.warns(UndefinedMetricWarning, match="iou_pooled\\[car\\]"):
        result = _audit(label, pred, groups=pd.DataFrame({"g": ["a", "a"]}), n_boot=0)
    assert result.value(metric="iou_pooled", cls="person") == pytest.approx(51 / 54)
    assert result.value(metric="iou_per_image", cls="person") == pytest.approx((1 + 1 / 4) / 2)
    # class 2 ("car") appears nowhere: undefined, left out of both means rather than counted as 0
    assert np.isnan(result.value(metric="iou_pooled", cls="car"))
    # background: image 1 I=50, U=50; image 2 I=96 (100 minus the 4 pixels labelled or predicted person), U=99
    assert result.value(metric="miou_per_image") == pytest.approx((50 / 50 + 1 + 96 / 99 + 1 / 4) / 4)
    assert result.value(metric="miou_pooled") == pytest.approx(((50 + 96) / (50 + 99) + 51 / 54) / 2)
    assert set(result.config["pooling"]) == {"pooled", "per_image"}


def test_image_bootstrap_equals_explicit_image_resampling():
    label, pred = _random_masks(n=8, seed=7)
    inter, pred_area, label_area = segmentation_counts(label, pred, 3)
    result = _audit(label, pred, n_boot=40, seed=3, confidence=0.5)
    weights = cluster_weights(8, n_boot=40, seed=np.random.default_rng(3))
    union = pred_area + label_area - inter
    boot_i, boot_u = weights @ inter, weights @ union  # (B, C): whole images resampled
    with np.errstate(invalid="ignore", divide="ignore"):
        replicate_miou = np.nanmean(boot_i / boot_u, axis=1)
    row = result.metrics.query("grouping == 'overall' and metric == 'miou_pooled'").iloc[0]
    assert (row.lower, row.upper) == (pytest.approx(np.quantile(replicate_miou, 0.25)),
                                      pytest.approx(np.quantile(replicate_miou, 0.75)))
    assert row.interval == "cluster_bootstrap_percentile" and row.n == 8


def test_disparities_and_tests_go_through_the_engine():
    label, pred = _random_masks(n=40, size=10, seed=11)
    pred[0::2] = label[0::2]  # group a: perfect, apart from ignored pixels
    pred[0::2][label[0::2] == 255] = 0
    result = _audit(label, pred, n_boot=200, reference_groups={"g": "a"})
    d = result.disparities.query("metric == 'miou_pooled' and kind == 'between_groups'").iloc[0]
    assert (d.group, d.other) == ("a", "b") and d.difference > 0.3 and bool(d.significant)
    assert {"to_reference", "to_overall"} <= set(result.disparities["kind"])
    per_class = result.disparities.query("metric == 'iou_pooled'")
    assert set(per_class["class"]) == set(CLASSES)
    assert result.significance["family_size"] == int(result.disparities["p_value"].notna().sum())


def test_person_region_counts_by_hand():
    # one row of 8 pixels: person 1 on pixels 0-2, person 2 on 5-7; prediction "person" (1) on 1-4 and 7
    instances = np.array([[1, 1, 1, 0, 0, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1, 1, 0, 0, 1]])
    inter, union = person_region_counts(pred, instances, person_class=1)
    # pixel 3 is nearer person 1, pixel 4 nearer person 2: each charged once
    # person 1: I = 2 (pixels 1, 2); U = 3 + 3 (pixels 1, 2, 3) - 2 = 4
    # person 2: I = 1 (pixel 7); U = 3 + 2 (pixels 4, 7) - 1 = 4
    assert inter.tolist() == [2, 1] and union.tolist() == [4, 4]
    ignored = np.zeros_like(pred, dtype=bool)
    ignored[0, 0] = True  # an ignored pixel leaves person 1's mask
    inter, union = person_region_counts(pred, instances, person_class=1, ignore=ignored)
    assert inter.tolist() == [2, 1] and union.tolist() == [3, 4]


def test_person_metrics_per_group_with_image_clusters():
    label, pred = _random_masks(n=4, seed=2)
    people = pd.DataFrame({"image_id": [0, 0, 1, 2, 3], "intersection": [9, 5, 8, 0, 10],
                           "union": [10, 10, 10, 5, 10]})
    person_groups = pd.DataFrame({"skin": ["darker", "lighter", "darker", "darker", "lighter"]})
    result = _audit(label, pred, people=people, person_groups=person_groups, n_boot=100)
    v = lambda metric, group: result.value(metric=metric, grouping="skin", group=group)  # noqa: E731
    # darker: IoU 0.9, 0.8, 0.0 -> mean 0.5667; recall@0.50 = 2/3; recall@0.85 = 1/3
    assert v("person_iou", "darker") == pytest.approx((0.9 + 0.8 + 0.0) / 3)
    assert v("person_iou_pooled", "darker") == pytest.approx(17 / 25)
    assert v("person_recall@0.50", "darker") == pytest.approx(2 / 3)
    assert v("person_recall@0.85", "darker") == pytest.approx(1 / 3)
    # lighter: 0.5, 1.0 -> recall at 0.50 is 1 (0.5 >= 0.5), at 0.55..0.95 it is 1/2
    assert v("person_ar", "lighter") == pytest.approx((1 + 9 * 0.5) / 10)
    units = result.groups.set_index(["unit", "grouping", "group"])["n"]
    assert units[("people", "skin", "darker")] == 3 and units[("images", "g", "a")] == 2
    assert result.disparities.query("metric == 'person_iou'")["grouping"].eq("skin").all()
    assert result.config["people"]["n_people"] == 5
