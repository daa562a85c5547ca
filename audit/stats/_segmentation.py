"""Semantic segmentation: per-image sufficient statistics and the grouped audit over them.

An image reduces **once** to its intersection, predicted area and labelled
area per class (a ``bincount`` of ``label * (C + 1) + pred`` over the pixels
that are not ``ignore_index``). Every metric is then a ratio of sums of
per-image statistics, so the clustered engine (:func:`audit_ratio_metrics`)
does the grouping, the image-level bootstrap, the disparities and the tests.

Two pooling conventions, each under its own metric name:

``*_pooled`` (dataset-pooled, as mmseg's ``IoUMetric``)
    ``iou_pooled[c] = sum_i I_ic / sum_i U_ic`` over the images of the group;
    ``miou_pooled`` is the mean over classes whose pooled union is non-empty
    (mmseg's ``nanmean``); ``dice_pooled[c] = 2 sum I / (sum P + sum L)``;
    ``pixel_accuracy_pooled = sum_i sum_c I_ic / sum_i sum_c L_ic`` (mmseg's
    ``aAcc``).
``*_per_image`` (per-image mean, as torchmetrics' ``MeanIoU``)
    ``iou_per_image[c]`` is the mean of ``I_ic / U_ic`` over the images whose
    union for ``c`` is non-empty (``MeanIoU(per_class=True)``);
    ``miou_per_image`` is the mean of ``I_ic / U_ic`` over every (image,
    class) pair with a non-empty union (``MeanIoU(per_class=False)``);
    likewise for Dice, and ``pixel_accuracy_per_image`` is the mean over
    images of each image's pixel accuracy.

A per-image mean is also a ratio of sums (the sum of per-image scores over the
number of images where it is defined), which keeps it exact under the image
bootstrap: a resample weights each image's score and indicator alike.

**People.** With per-person instance masks, every person is scored apart:
each predicted-person pixel is charged to the nearest person (the Voronoi cell
of their mask, :func:`scipy.ndimage.distance_transform_edt`), so that
``I_p = |M_p & P|`` and ``U_p = |M_p| + |P & V_p| - I_p``. A person's mask IoU
is ``I_p / U_p``; recall at a threshold ``t`` is the share of people with IoU
``>= t`` (FACET's segmentation recall), and ``person_ar`` its mean over
``t = 0.50:0.05:0.95``. Recall at 0.50 is also given by person size
(:func:`person_size_bins`: COCO's small / medium / large mask areas, or area
tertiles when every person is small).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import StatsInputError
from ._groups import Attribute
from ._ratios import audit_ratio_metrics
from ._results import GroupedMetrics
from ._significance import CORRECTIONS, adjust_p_values

__all__ = [
    "IOU_THRESHOLDS",
    "POOLING",
    "audit_segmentation",
    "person_region_counts",
    "person_size_bins",
    "person_statistics",
    "segmentation_counts",
    "segmentation_statistics",
]

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
COCO_SIZE_EDGES = (32 ** 2, 96 ** 2)  # COCO's area ranges: small < 32², medium < 96², large

POOLING = {
    "pooled": (
        "dataset-pooled, as mmseg IoUMetric: sum of intersections / sum of unions over the group's images, "
        "then the mean over classes with a non-empty pooled union (total_area_intersect / total_area_union, "
        "nanmean); pixel_accuracy_pooled is mmseg's aAcc"
    ),
    "per_image": (
        "per-image mean, as torchmetrics MeanIoU: each image's I/U per class, averaged over the (image, class) "
        "pairs with a non-empty union (per class: over the images where the class has a non-empty union)"
    ),
}


def segmentation_counts(label, pred, num_classes: int, *, ignore_index: int | None = 255):
    """Per-image intersection, predicted area and labelled area of every class.

    Parameters
    ----------
    label, pred : array-like of int, shape (H, W) or (N, H, W)
        Label and predicted masks (class indices). Label pixels equal to
        ``ignore_index`` are left out entirely. A predicted value outside
        ``0..num_classes-1`` (e.g. 255, "no prediction") counts for no class:
        it adds to the label area only.
    num_classes : int

    Returns
    -------
    intersection, pred_area, label_area : ndarray of int64, shape (N, C)
        (``(C,)`` for a single 2-D mask.) The union is
        ``pred_area + label_area - intersection``.

    Raises
    ------
    StatsInputError
        Shapes differ, or a label value is neither a class nor ``ignore_index``.
    """
    label = np.asarray(label)
    pred = np.asarray(pred)
    if label.shape != pred.shape or label.ndim not in (2, 3):
        raise StatsInputError(
            f"expected label and pred masks of the same shape (H, W) or (N, H, W), found {label.shape} and {pred.shape}"
        )
    single = label.ndim == 2
    if single:
        label, pred = label[None], pred[None]
    n, c1 = label.shape[0], num_classes + 1
    lab = label.reshape(n, -1)
    prd = pred.reshape(n, -1)
    keep = np.ones(lab.shape, dtype=bool) if ignore_index is None else lab != ignore_index
    bad = keep & ((lab < 0) | (lab >= num_classes)) if lab.dtype.kind == "i" else keep & (lab >= num_classes)
    if bad.any():
        raise StatsInputError(
            f"expected label values in 0..{num_classes - 1} or ignore_index {ignore_index}, "
            f"found {int(lab[bad][0])}"
        )
    prd = np.where((prd >= 0) & (prd < num_classes), prd, num_classes)
    bins = c1 * c1
    # one bincount over the whole batch: image offset + label * (C+1) + pred; ignored pixels -> a spill bin
    key = lab.astype(np.int32) * c1 + prd
    key = np.where(keep, key, bins)
    key += (np.arange(n, dtype=np.int32) * (bins + 1))[:, None]
    cm = np.bincount(key.ravel(), minlength=n * (bins + 1)).reshape(n, bins + 1)[:, :bins].reshape(n, c1, c1)
    intersection = np.einsum("nii->ni", cm)[:, :num_classes].astype(np.int64)
    label_area = cm[:, :num_classes, :].sum(2).astype(np.int64)
    pred_area = cm[:, :, :num_classes].sum(1).astype(np.int64)
    if single:
        return intersection[0], pred_area[0], label_area[0]
    return intersection, pred_area, label_area


def _per_class_columns(n_classes: int):
    return [f"i{j}" for j in range(n_classes)], [f"u{j}" for j in range(n_classes)]


def segmentation_statistics(intersection, pred_area, label_area, *, classes: Sequence[str]):
    """The per-image statistics table and metric definitions of a segmentation audit.

    Parameters
    ----------
    intersection, pred_area, label_area : array-like, shape (N, C)
        From :func:`segmentation_counts`, one row per image.
    classes : sequence of str

    Returns
    -------
    statistics : DataFrame, N rows
        Additive columns: per class ``i<j>``, ``u<j>``, ``h<j>`` (half of
        predicted + labelled area, the Dice denominator over 2), ``s<j>``
        (the image's IoU, 0 where undefined), ``d<j>`` (its Dice), ``v<j>``
        (1 where the union is non-empty); and ``correct``, ``labelled``,
        ``acc`` (the image's pixel accuracy), ``acc_defined``, ``iou_sum``,
        ``dice_sum``, ``defined_sum`` and ``images`` (1).
    metrics : dict
        Metric key -> parts, for :func:`audit_ratio_metrics`.
    n_columns : dict
        Per-class metrics count the images where the class has a non-empty
        union; the others count images.
    """
    inter = np.asarray(intersection, dtype=float)
    pred_area = np.asarray(pred_area, dtype=float)
    label_area = np.asarray(label_area, dtype=float)
    n, k = inter.shape
    if k != len(classes) or pred_area.shape != inter.shape or label_area.shape != inter.shape:
        raise StatsInputError(
            f"expected (N, {len(classes)}) intersection, pred_area and label_area, "
            f"found {inter.shape}, {pred_area.shape}, {label_area.shape}"
        )
    union = pred_area + label_area - inter
    defined = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(defined, inter / np.where(defined, union, 1), 0.0)
        dice = np.where(defined, 2 * inter / np.where(defined, pred_area + label_area, 1), 0.0)
    correct, labelled = inter.sum(1), label_area.sum(1)
    columns = {}
    for j in range(k):
        columns[f"i{j}"] = inter[:, j]
        columns[f"u{j}"] = union[:, j]
        columns[f"h{j}"] = (pred_area[:, j] + label_area[:, j]) / 2
        columns[f"s{j}"] = iou[:, j]
        columns[f"d{j}"] = dice[:, j]
        columns[f"v{j}"] = defined[:, j].astype(float)
    columns.update({
        "correct": correct, "labelled": labelled,
        "acc": np.where(labelled > 0, correct / np.maximum(labelled, 1), 0.0),
        "acc_defined": (labelled > 0).astype(float),
        "iou_sum": iou.sum(1), "dice_sum": dice.sum(1), "defined_sum": defined.sum(1).astype(float),
        "images": np.ones(n),
    })
    statistics = pd.DataFrame(columns)
    metrics: dict = {
        "miou_pooled": [(f"i{j}", f"u{j}") for j in range(k)],
        "miou_per_image": [("iou_sum", "defined_sum")],
        "pixel_accuracy_pooled": [("correct", "labelled")],
        "pixel_accuracy_per_image": [("acc", "acc_defined")],
        "mdice_pooled": [(f"i{j}", f"h{j}") for j in range(k)],
        "mdice_per_image": [("dice_sum", "defined_sum")],
    }
    n_columns = {}
    for j, name in enumerate(classes):
        for metric, parts in (("iou_pooled", (f"i{j}", f"u{j}")), ("iou_per_image", (f"s{j}", f"v{j}")),
                              ("dice_pooled", (f"i{j}", f"h{j}")), ("dice_per_image", (f"d{j}", f"v{j}"))):
            metrics[(metric, str(name))] = [parts]
            n_columns[(metric, str(name))] = f"v{j}"
    return statistics, metrics, n_columns


def person_region_counts(pred, instances, *, person_class: int, ignore=None):
    """Intersection and union of every person's mask with the predicted person region.

    Each predicted-person pixel is charged to the person whose mask is
    nearest (ties to the first found by the distance transform), so one
    person's pixels are scored apart from another's and no predicted pixel
    counts against two people.

    Parameters
    ----------
    pred : array-like of int, shape (H, W)
        Predicted class mask.
    instances : array-like of int, shape (H, W)
        0 where there is no person, ``k`` (1..K) on person ``k``'s pixels.
    person_class : int
        The class index of "person" in ``pred``.
    ignore : array-like of bool, shape (H, W), optional
        Pixels left out (the label mask's ``ignore_index``).

    Returns
    -------
    intersection, union : ndarray of int64, shape (K,)
        Person ``k`` at index ``k - 1``; K is ``instances.max()``.
    """
    from scipy.ndimage import distance_transform_edt

    pred = np.asarray(pred)
    instances = np.asarray(instances).astype(np.int64)
    if pred.shape != instances.shape or pred.ndim != 2:
        raise StatsInputError(f"expected pred and instances of the same shape (H, W), found {pred.shape} and {instances.shape}")
    k = int(instances.max(initial=0))
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keep = np.ones(pred.shape, dtype=bool) if ignore is None else ~np.asarray(ignore, dtype=bool)
    people = instances * keep
    predicted = (pred == person_class) & keep
    if (instances == 0).any():
        nearest = distance_transform_edt(instances == 0, return_distances=False, return_indices=True)
        owner = instances[tuple(nearest)]
    else:
        owner = instances
    area = np.bincount(people.ravel(), minlength=k + 1)[1:]
    inter = np.bincount(people[predicted], minlength=k + 1)[1:]
    owned = np.bincount(owner[predicted], minlength=k + 1)[1:]
    return inter.astype(np.int64), (area + owned - inter).astype(np.int64)


def person_size_bins(area) -> tuple[np.ndarray, dict]:
    """Size bin of each person by mask area (pixels), for recall by object size.

    COCO's area ranges -- ``small`` below 32² pixels, ``medium`` below 96²,
    ``large`` from 96² -- unless every person is small, when the ranges would
    say nothing: then area tertiles (``lower_third`` up to the 1/3 quantile,
    ``middle_third`` up to the 2/3 quantile, ``upper_third`` above).

    Returns
    -------
    bins : ndarray of int, (n_people,)
        Index into ``info["labels"]``.
    info : dict
        ``method`` (``"coco"`` or ``"tertiles"``), ``labels``, ``edges`` (pixels) and ``description``.
    """
    area = np.asarray(area, dtype=float)
    if area.size == 0 or (area >= COCO_SIZE_EDGES[0]).any():
        edges = [float(e) for e in COCO_SIZE_EDGES]
        bins = np.searchsorted(edges, area, side="right")  # an area of exactly 32² is medium
        info = {"method": "coco", "labels": ["small", "medium", "large"], "edges": edges,
                "description": "COCO area ranges of the person mask: small < 32² px, medium < 96² px, "
                               "large ≥ 96² px"}
    else:
        edges = [float(e) for e in np.quantile(area, [1 / 3, 2 / 3])]
        bins = np.searchsorted(edges, area, side="left")  # an area equal to an edge falls in the lower bin
        info = {"method": "tertiles", "labels": ["lower_third", "middle_third", "upper_third"], "edges": edges,
                "description": (f"every person mask is smaller than 32² px, so area tertiles instead of COCO's "
                                f"ranges: ≤ {edges[0]:g} px, ≤ {edges[1]:g} px, > {edges[1]:g} px")}
    return np.asarray(bins, dtype=np.int64), info


def person_statistics(intersection, union, *, thresholds: Sequence[float] = IOU_THRESHOLDS, area=None):
    """Per-person statistics table and metric definitions (one row per person).

    Metrics: ``person_iou`` (mean per-person mask IoU), ``person_iou_pooled``
    (sum of intersections over sum of unions), ``person_recall@t`` for each
    threshold, and ``person_ar`` (their mean, FACET's AR over 0.50:0.05:0.95).
    A person with an empty union (a mask wholly ignored) is left out.
    With ``area`` (each person's mask area in pixels), also
    ``person_recall@0.50_<size>`` per size bin of :func:`person_size_bins`
    that holds someone; the bins are returned as a third value.
    """
    inter = np.asarray(intersection, dtype=float)
    union = np.asarray(union, dtype=float)
    defined = union > 0
    iou = np.where(defined, inter / np.where(defined, union, 1), 0.0)
    columns = {"inter": inter, "union": union, "iou": iou, "people": defined.astype(float)}
    metrics: dict = {"person_iou": [("iou", "people")], "person_iou_pooled": [("inter", "union")]}
    ar = []
    for t in thresholds:
        name = f"m{t:.2f}"
        # a small tolerance so that an IoU of exactly t counts despite float rounding
        columns[name] = (defined & (iou >= t - 1e-12)).astype(float)
        metrics[f"person_recall@{t:.2f}"] = [(name, "people")]
        ar.append((name, "people"))
    metrics["person_ar"] = ar
    if area is None:
        return pd.DataFrame(columns), metrics
    bins, info = person_size_bins(np.asarray(area, dtype=float)[defined] if defined.any() else np.zeros(0))
    full = np.full(len(defined), -1, dtype=np.int64)
    full[defined] = bins
    present = []
    for k, label in enumerate(info["labels"]):
        in_bin = full == k
        if not in_bin.any():
            continue  # a size range with nobody in it would only add undefined values
        present.append(label)
        columns[f"size_{label}"] = in_bin.astype(float)
        columns[f"m0.50_{label}"] = (in_bin & (iou >= 0.5 - 1e-12)).astype(float)
        metrics[f"person_recall@0.50_{label}"] = [(f"m0.50_{label}", f"size_{label}")]
    return pd.DataFrame(columns), metrics, {**info, "present": present}


DEFAULT_SEGMENTATION_DISPARITIES = (
    "miou_pooled", "miou_per_image", "pixel_accuracy_pooled", "mdice_pooled", "iou_pooled",
    "person_iou", "person_recall@0.50", "person_ar",
)


def audit_segmentation(
    *,
    intersection,
    pred_area,
    label_area,
    groups: pd.DataFrame,
    classes: Sequence[str],
    image_ids=None,
    attributes: Sequence[Attribute] | None = None,
    intersections: Sequence[Sequence[str]] = (),
    reference_groups: Mapping[str, str] | None = None,
    people: pd.DataFrame | None = None,
    person_groups: pd.DataFrame | None = None,
    person_attributes: Sequence[Attribute] | None = None,
    person_intersections: Sequence[Sequence[str]] = (),
    person_reference_groups: Mapping[str, str] | None = None,
    disparity_metrics: Sequence | None = None,
    confidence: float = 0.95,
    n_boot: int = 1000,
    weights: str = "multinomial",
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_group_size: int = 50,
) -> GroupedMetrics:
    """Disaggregate segmentation metrics over image groups (and, optionally, over people).

    Parameters
    ----------
    intersection, pred_area, label_area : array-like, shape (N, C)
        Per-image counts (:func:`segmentation_counts`).
    groups : DataFrame, N rows
        Raw attribute values of each image.
    classes : sequence of str
    image_ids : array-like of shape (N,), optional
        Image ids (the bootstrap clusters); defaults to the row number.
    people : DataFrame, optional
        One row per person: ``image_id``, ``intersection`` and ``union``
        (:func:`person_region_counts`), and optionally ``area`` (mask pixels)
        for recall by person size. Their bootstrap resamples whole images,
        so two people in one image move together.
    person_groups : DataFrame
        Raw attribute values of each person (rows of ``people``).
    disparity_metrics : sequence, optional
        Metric names (or (name, class) keys) that get disparities and tests;
        default :data:`DEFAULT_SEGMENTATION_DISPARITIES`.

    Other parameters are those of :func:`audit_ratio_metrics`. Small-group
    flags count images (people for person metrics; images with the class for
    per-class metrics), never pixels.

    Returns
    -------
    GroupedMetrics
        Metrics named by their pooling convention (``*_pooled``,
        ``*_per_image``), per-class ones with the class in ``class``; person
        metrics ``person_*``. ``config["pooling"]`` describes both
        conventions; ``groups`` has a ``unit`` column (``images`` or
        ``people``). One multiplicity correction covers every test.
    """
    if correction not in CORRECTIONS:
        raise StatsInputError(f"expected correction in {sorted(CORRECTIONS)}, found '{correction}'")
    statistics, metrics, n_columns = segmentation_statistics(intersection, pred_area, label_area, classes=classes)
    disparity_metrics = list(DEFAULT_SEGMENTATION_DISPARITIES if disparity_metrics is None else disparity_metrics)
    image_ids = np.arange(len(statistics)) if image_ids is None else np.asarray(image_ids)
    if len(image_ids) != len(statistics):
        raise StatsInputError(f"expected one image id per image ({len(statistics)}), found {len(image_ids)}")
    common = dict(confidence=confidence, n_boot=n_boot, weights=weights, seed=seed, alpha=alpha,
                  correction=correction, min_group_size=min_group_size, interval="bootstrap",
                  task="semantic_segmentation")
    image_result = audit_ratio_metrics(
        statistics=statistics, metrics=metrics, groups=groups, clusters=image_ids, attributes=attributes,
        intersections=intersections, reference_groups=reference_groups,
        disparity_metrics=[m for m in disparity_metrics if not str(m).startswith("person_")],
        size_column="images", n_columns=n_columns, skip_undefined_parts=True, **common,
    )
    results = [(image_result, "images")]
    person_config = None
    if people is not None:
        missing = [c for c in ("image_id", "intersection", "union") if c not in people.columns]
        if missing:
            raise StatsInputError(f"expected people columns {missing}, found columns {list(people.columns)}")
        if person_groups is None or len(person_groups) != len(people):
            raise StatsInputError("expected person_groups with one row per person")
        sizes = None
        if "area" in people.columns:
            p_stats, p_metrics, sizes = person_statistics(people["intersection"], people["union"],
                                                          area=people["area"])
        else:
            p_stats, p_metrics = person_statistics(people["intersection"], people["union"])
        # people share the image's cluster: map their image ids onto the images' ids
        person_result = audit_ratio_metrics(
            statistics=p_stats, metrics=p_metrics, groups=person_groups, clusters=people["image_id"].to_numpy(),
            attributes=person_attributes, intersections=person_intersections,
            reference_groups=person_reference_groups,
            disparity_metrics=[m for m in disparity_metrics if str(m).startswith("person_")],
            size_column="people", **{**common, "seed": seed + 1},
        )
        results.append((person_result, "people"))
        person_config = {
            "thresholds": list(IOU_THRESHOLDS), "n_people": int(p_stats["people"].sum()),
            "region": "each predicted-person pixel is charged to the nearest person's mask (Voronoi cell)",
        }
        if sizes is not None:
            person_config["size_bins"] = {k: sizes[k] for k in ("method", "labels", "edges", "description")}
            person_config["size_bins"]["labels"] = sizes["present"]
    config = dict(image_result.config)
    config.update({
        "task": "semantic_segmentation", "classes": [str(c) for c in classes], "pooling": dict(POOLING),
        "n_images": int(len(statistics)), "people": person_config,
    })
    return merge_results(results, config=config, correction=correction, alpha=alpha)


def merge_results(results, *, config: dict, correction: str, alpha: float) -> GroupedMetrics:
    """Join results over different units into one, with one multiplicity correction over all their tests."""
    metrics = pd.concat([r.metrics for r, _ in results], ignore_index=True)
    groups = pd.concat([r.groups.assign(unit=unit) for r, unit in results], ignore_index=True)
    disparities = pd.concat([r.disparities for r, _ in results if len(r.disparities)], ignore_index=True) \
        if any(len(r.disparities) for r, _ in results) else results[0][0].disparities
    disparities = disparities.drop(columns=[c for c in disparities.columns
                                            if c.startswith("p_") and c != "p_value" or c == "significant"])
    p = disparities["p_value"].to_numpy(dtype=float)
    for method in CORRECTIONS:
        adjusted, reject = adjust_p_values(p, method=method, alpha=alpha)
        disparities[f"p_{method}"] = adjusted
        if method == correction:
            disparities["significant"] = reject
    significance = dict(results[0][0].significance)
    significance["family_size"] = int(np.isfinite(p).sum())
    warnings_ = [w for r, _ in results for w in r.warnings]
    return GroupedMetrics(metrics=metrics, disparities=disparities, groups=groups, reliability=pd.DataFrame(),
                          config=config, significance=significance, warnings=warnings_)
