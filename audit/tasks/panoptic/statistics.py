"""Panoptic quality overall, per image group and per person group, from per-image sufficient statistics.

Each image is reduced once (:func:`audit.tasks.panoptic.matching.match_image`)
to, per category ``c``, its matched pairs ``TP_c``, the sum of their IoUs
``IoU_c``, its false positives ``FP_c`` and false negatives ``FN_c``; and each
non-crowd ground-truth *person* segment to matched (0/1), the IoU of its match
and the false positives it owns. Every metric is then a ratio of sums of these
(:func:`audit.stats.audit_ratio_metrics` does the grouping, the image-cluster
bootstrap, the disparities and the tests):

``pq_class``, ``sq_class``, ``rq_class`` (one row per category, in ``class``)
    ``PQ_c = IoU_c / (TP_c + FP_c / 2 + FN_c / 2)``, ``SQ_c = IoU_c / TP_c``,
    ``RQ_c = TP_c / (TP_c + FP_c / 2 + FN_c / 2)``; undefined (NaN) where the
    denominator is 0.
``pq``, ``sq``, ``rq`` and ``*_things``, ``*_stuff``
    The means over the categories that occur (``TP + FP + FN > 0``) among all,
    thing or stuff categories: COCO's ``pq_average``. As in panopticapi and
    torchmetrics, a category that occurs without a match adds an SQ of 0 to the
    mean (its own ``sq_class`` row stays undefined). The engine takes a ratio to be
    undefined only where its denominator sum is 0, so the SQ parts divide by
    ``TP_c + 2^-996 (FP_c + FN_c)``: exactly ``TP_c`` wherever ``TP_c >= 1``
    (the term is far below float64's resolution), and positive where the
    category occurs without a match. (Only a group's *complement* in a
    to-overall test can lose this: a category whose every match lies in the
    group and that occurs without one outside it is then left out of the
    complement's SQ mean instead of adding 0.)
``person_recall``
    People matched / people (a proportion of people clustered in images: Wilson
    intervals on the effective sample size, two-proportion tests on effective
    counts).
``person_sq``
    Mean IoU of the matched people (``sum IoU / TP``).
``person_pq_owned``, ``person_rq_owned``
    PQ (and RQ) *without unowned false positives*: ``sum IoU / (TP + FN / 2 +
    FP_owned / 2)`` over the group's people, where a false positive of a person
    category is owned by the person it overlaps most (none: it overlaps nobody,
    belongs to no group and is left out, as in detection audits). Over everyone
    it is the person categories' PQ without the false positives on background.

Image groups get every metric above but the ``person_*`` ones; person groups
get the ``person_*`` ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import StatsInputError

__all__ = ["DEFAULT_DISPARITIES", "PERSON_METRICS", "audit_panoptic", "coco_pq", "image_table", "person_table_stats"]

SQ_EPSILON = 2.0 ** -996  # a power of two: its integer multiples add exactly
DEFAULT_DISPARITIES = ("pq", "sq", "rq", "person_recall", "person_sq", "person_pq_owned")
PERSON_METRICS = ("person_recall", "person_sq", "person_rq_owned", "person_pq_owned")
MATCHING = ("COCO panoptic (panopticapi pq_compute): unique matching of same-category segments at IoU > 0.5, void "
            "pixels left out of the union, crowd never matched nor missed, an unmatched prediction more than half on "
            "void and its category's crowd region is no false positive")
OWNED = ("person_pq_owned: the person categories' PQ over a group's people with the false positives that overlap "
         "no person left out (a false positive belongs to the person it overlaps most, if any)")


def coco_pq(iou, tp, fp, fn, isthing) -> dict:
    """PQ, SQ, RQ as panopticapi's ``PQStat.pq_average`` computes them from summed counts.

    Parameters
    ----------
    iou, tp, fp, fn : array-like, shape (C,)
        Summed over the images.
    isthing : array-like of bool, shape (C,)

    Returns
    -------
    dict
        ``all``, ``things``, ``stuff``: ``{"pq", "sq", "rq", "n"}`` (NaN when ``n`` is 0, where panopticapi
        would divide by zero); ``per_class``: arrays ``pq``, ``sq``, ``rq`` (NaN where the class does not occur;
        ``sq`` 0 where it occurs without a match, as panopticapi).
    """
    iou, tp, fp, fn = (np.asarray(x, dtype=float) for x in (iou, tp, fp, fn))
    isthing = np.asarray(isthing, dtype=bool)
    den = tp + 0.5 * fp + 0.5 * fn
    present = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        pq = np.where(present, iou / np.where(present, den, 1), np.nan)
        rq = np.where(present, tp / np.where(present, den, 1), np.nan)
        sq = np.where(present, np.where(tp > 0, iou / np.where(tp > 0, tp, 1), 0.0), np.nan)
    out = {"per_class": {"pq": pq, "sq": sq, "rq": rq}}
    for name, keep in (("all", np.ones_like(present)), ("things", isthing), ("stuff", ~isthing)):
        sel = present & keep
        n = int(sel.sum())
        out[name] = {k: float(v[sel].mean()) if n else float("nan") for k, v in (("pq", pq), ("sq", sq), ("rq", rq))}
        out[name]["n"] = n
    return out


def image_table(iou, tp, fp, fn, *, classes: Sequence[str], isthing) -> tuple[pd.DataFrame, dict, dict]:
    """The per-image statistics and metric definitions of the image-level audit.

    Parameters
    ----------
    iou, tp, fp, fn : array-like, shape (N, C)
        Per image and category.
    classes : sequence of str
        Category names (the ``class`` of per-class rows).
    isthing : array-like of bool, shape (C,)

    Returns
    -------
    statistics : DataFrame, N rows
    metrics : dict
        Metric key -> parts, for :func:`audit.stats.audit_ratio_metrics`.
    n_columns : dict
        Per-class metrics count the images where the category occurs.
    """
    iou, tp, fp, fn = (np.asarray(x, dtype=float) for x in (iou, tp, fp, fn))
    n, k = tp.shape
    isthing = np.asarray(isthing, dtype=bool)
    if len(classes) != k or iou.shape != tp.shape or fp.shape != tp.shape or fn.shape != tp.shape \
            or isthing.shape != (k,):
        raise StatsInputError(f"expected (N, {len(classes)}) iou, tp, fp, fn and {len(classes)} isthing flags, found "
                              f"{iou.shape}, {tp.shape}, {fp.shape}, {fn.shape} and {isthing.shape}")
    columns = {"images": np.ones(n)}
    for j in range(k):
        columns[f"iou{j}"] = iou[:, j]
        columns[f"tp{j}"] = tp[:, j]
        columns[f"den{j}"] = tp[:, j] + 0.5 * (fp[:, j] + fn[:, j])
        columns[f"sqd{j}"] = tp[:, j] + SQ_EPSILON * (fp[:, j] + fn[:, j])
        columns[f"on{j}"] = (columns[f"den{j}"] > 0).astype(float)
    statistics = pd.DataFrame(columns)
    metrics: dict = {}
    for suffix, keep in (("", np.ones(k, bool)), ("_things", isthing), ("_stuff", ~isthing)):
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            continue
        metrics[f"pq{suffix}"] = [(f"iou{j}", f"den{j}") for j in idx]
        metrics[f"sq{suffix}"] = [(f"iou{j}", f"sqd{j}") for j in idx]
        metrics[f"rq{suffix}"] = [(f"tp{j}", f"den{j}") for j in idx]
    n_columns = {}
    for j, name in enumerate(classes):
        for metric, parts in (("pq_class", (f"iou{j}", f"den{j}")), ("sq_class", (f"iou{j}", f"tp{j}")),
                              ("rq_class", (f"tp{j}", f"den{j}"))):
            metrics[(metric, str(name))] = [parts]
            n_columns[(metric, str(name))] = f"on{j}"
    return statistics, metrics, n_columns


def person_table_stats(matched, iou, owned_fp) -> tuple[pd.DataFrame, dict]:
    """Per-person statistics (one row per non-crowd person segment) and the ``person_*`` metric definitions."""
    matched = np.asarray(matched, dtype=float)
    iou = np.where(matched > 0, np.asarray(iou, dtype=float), 0.0)
    owned = np.asarray(owned_fp, dtype=float)
    statistics = pd.DataFrame({"people": np.ones(matched.size), "matched": matched, "iou": iou,
                               "den": 0.5 + 0.5 * matched + 0.5 * owned})
    metrics = {"person_recall": [("matched", "people")], "person_sq": [("iou", "matched")],
               "person_rq_owned": [("matched", "den")], "person_pq_owned": [("iou", "den")]}
    return statistics, metrics


def audit_panoptic(
    *,
    iou,
    tp,
    fp,
    fn,
    classes: Sequence[str],
    isthing,
    image_ids=None,
    image_groups: pd.DataFrame | None = None,
    image_attributes=None,
    image_intersections: Sequence[Sequence[str]] = (),
    image_reference_groups: Mapping[str, str] | None = None,
    people: pd.DataFrame | None = None,
    person_groups: pd.DataFrame | None = None,
    person_attributes=None,
    person_intersections: Sequence[Sequence[str]] = (),
    person_reference_groups: Mapping[str, str] | None = None,
    disparity_metrics: Sequence | None = None,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    interval: str = "wilson",
    min_group_size: int = 50,
):
    """Disaggregate panoptic quality over image groups and person groups (the notebook and bench entry point).

    Parameters
    ----------
    iou, tp, fp, fn : array-like, shape (N, C)
        Per image and category (:class:`~audit.tasks.panoptic.matching.ImageMatch`, stacked).
    classes : sequence of str
        Category names, in column order.
    isthing : array-like of bool, shape (C,)
    image_ids : array-like, shape (N,), optional
        The bootstrap clusters; default the row number.
    image_groups : DataFrame, N rows, optional
        Raw image attribute values (e.g. lighting); without it only the overall rows.
    people : DataFrame, optional
        One row per non-crowd person segment: ``image_id`` (one of ``image_ids``), ``matched`` (0/1), ``iou``
        (of the match) and ``owned_fp``.
    person_groups : DataFrame, optional
        Raw attribute values of each person (rows of ``people``).
    disparity_metrics : sequence, optional
        Metrics that get disparities and tests (default :data:`DEFAULT_DISPARITIES`).

    Other parameters are those of :func:`audit.stats.audit_ratio_metrics`.

    Returns
    -------
    GroupedMetrics
        Image-level and person-level rows in one table (``groups.unit`` is ``images`` or ``people``), one
        multiplicity correction over every test.
    """
    from ...stats import audit_ratio_metrics
    from ...stats._segmentation import merge_results  # not exported by audit.stats yet (see the report)

    statistics, metrics, n_columns = image_table(iou, tp, fp, fn, classes=classes, isthing=isthing)
    wanted = list(DEFAULT_DISPARITIES if disparity_metrics is None else disparity_metrics)
    n_images = len(statistics)
    image_ids = np.arange(n_images) if image_ids is None else np.asarray(image_ids)
    if len(image_ids) != n_images:
        raise StatsInputError(f"expected one image id per image ({n_images}), found {len(image_ids)}")
    groups = image_groups if image_groups is not None else pd.DataFrame(index=range(n_images))
    common = dict(confidence=confidence, n_boot=n_boot, alpha=alpha, correction=correction,
                  min_group_size=min_group_size, task="panoptic_segmentation")
    image_result = audit_ratio_metrics(
        statistics=statistics, metrics=metrics, groups=groups.reset_index(drop=True), clusters=image_ids,
        attributes=None if image_attributes is None else list(image_attributes), intersections=image_intersections,
        reference_groups=image_reference_groups, disparity_metrics=[m for m in wanted if m in _names(metrics)],
        size_column="images", n_columns=n_columns, skip_undefined_parts=True, interval="bootstrap", seed=seed,
        **common)
    results = [(image_result, "images")]
    n_people = 0
    if people is not None and len(people):
        missing = [c for c in ("image_id", "matched", "iou", "owned_fp") if c not in people.columns]
        if missing:
            raise StatsInputError(f"expected people columns {missing}, found columns {list(people.columns)}")
        if person_groups is None or len(person_groups) != len(people):
            raise StatsInputError("expected person_groups with one row per person")
        p_stats, p_metrics = person_table_stats(people["matched"], people["iou"], people["owned_fp"])
        n_people = len(p_stats)
        person_result = audit_ratio_metrics(
            statistics=p_stats, metrics=p_metrics, groups=person_groups.reset_index(drop=True),
            clusters=people["image_id"].to_numpy(),
            attributes=None if person_attributes is None else list(person_attributes),
            intersections=person_intersections, reference_groups=person_reference_groups,
            disparity_metrics=[m for m in wanted if m in p_metrics], size_column="people", interval=interval,
            seed=seed + 1, **common)
        results.append((person_result, "people"))
    config = dict(image_result.config)
    config.update({
        "task": "panoptic_segmentation", "classes": [str(c) for c in classes],
        "things": [str(c) for c, t in zip(classes, np.asarray(isthing, bool)) if t],
        "n_images": int(n_images), "n_people": int(n_people), "matching": MATCHING, "owned_false_positives": OWNED,
        "class_means": "mean over the categories that occur (TP + FP + FN > 0); a category that occurs without a "
                       "match adds SQ 0 (COCO panopticapi, torchmetrics PanopticQuality)",
        "disparity_metrics": [m for m in wanted if m in _names(metrics) or m in PERSON_METRICS],
    })
    return merge_results(results, config=config, correction=correction, alpha=alpha)


def _names(metrics) -> set:
    return {k[0] if isinstance(k, tuple) else k for k in metrics}
