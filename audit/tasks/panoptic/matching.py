"""One image reduced once: COCO panoptic matching to per-class and per-segment sufficient statistics.

Pure numpy (no torch, no files): the lead may move it down into :mod:`audit.stats`.

The rules are those of the reference evaluation, ``pq_compute_single_core`` in
``panopticapi/evaluation.py`` (cocodataset/panopticapi):

* a ground-truth segment and a predicted segment of the **same category** match
  when their IoU is **above 0.5**; the matching is then unique (two segments of
  one panoptic map do not overlap, so no segment can pass 0.5 with two others);
* the IoU's union leaves out the predicted pixels that fall on **void** (segment
  id 0 of the ground truth): ``|P| + |G| - |P & G| - |P & void|``;
* **crowd** ground truth (``iscrowd: 1``) is never matched and never a false
  negative;
* an unmatched prediction is **not a false positive** when more than half of its
  pixels fall on void plus the crowd region of its own category (panopticapi
  keeps one crowd region per category and image: the last one listed in
  ``segments_info``; COCO has at most one);
* every other unmatched non-crowd ground truth is a false negative, every other
  unmatched prediction a false positive.

One difference from panopticapi, on purpose: areas come from the PNGs, never
from ``segments_info[].area`` (panopticapi takes the ground truth's from the
JSON); the data layer refuses a JSON ``area`` that differs from the PNG.

Everything is computed from one joint histogram of (ground-truth segment,
predicted segment) pixel pairs, ``np.bincount`` over the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageMatch", "Segments", "compact_ids", "match_image", "rgb_to_id", "segment_boxes"]

MATCH_IOU = 0.5
IGNORE_SHARE = 0.5


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of a COCO panoptic PNG: ``R + 256 G + 256² B`` (panopticapi's ``rgb2id``).

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)

    Returns
    -------
    ndarray of uint32, shape (H, W)
    """
    rgb = np.asarray(rgb)
    out = np.zeros(rgb.shape[:2] + (4,), dtype=np.uint8)  # little-endian RGB0 bytes read as one uint32
    out[..., :3] = rgb
    return out.view("<u4")[..., 0]


@dataclass(frozen=True)
class Segments:
    """The segments of one panoptic map (as listed in ``segments_info``).

    Attributes
    ----------
    ids : ndarray of int64
        Segment ids as they appear in the PNG (never 0).
    category : ndarray of int64
        Index of each segment's category in the audit's category list (not the COCO id).
    iscrowd : ndarray of bool
        Crowd regions (ground truth only; all False for predictions).
    """

    ids: np.ndarray
    category: np.ndarray
    iscrowd: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)


def compact_ids(id_map: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace segment ids by ``1 + `` their position in ``ids`` (0 stays void).

    Parameters
    ----------
    id_map : ndarray of int, shape (H, W)
    ids : ndarray of int, shape (n,)
        Distinct, non-zero segment ids.

    Returns
    -------
    index : ndarray of int64, shape (H * W,)
        0 on void, ``k + 1`` on segment ``ids[k]``, -1 on an id not in ``ids``.
    unknown : ndarray
        The ids in ``id_map`` that are neither 0 nor in ``ids`` (sorted, distinct).
    """
    flat = np.asarray(id_map).reshape(-1).astype(np.int64, copy=False)
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        index = np.where(flat == 0, 0, -1)
    else:
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        pos = np.searchsorted(sorted_ids, flat)
        np.minimum(pos, ids.size - 1, out=pos)
        hit = sorted_ids[pos] == flat
        index = np.where(hit, order[pos] + 1, np.where(flat == 0, 0, -1))
    unknown = np.unique(flat[index < 0]) if (index < 0).any() else np.zeros(0, np.int64)
    return index, unknown


@dataclass(frozen=True)
class ImageMatch:
    """The sufficient statistics of one image.

    Attributes
    ----------
    tp, fp, fn : ndarray of int64, shape (C,)
        Per category (the audit's category list): matched pairs, counted false positives, false negatives.
    iou : ndarray of float64, shape (C,)
        Sum of the IoUs of the matched pairs, per category.
    gt_area, pred_area : ndarray of int64
        Pixels of each ground-truth / predicted segment (in ``segments_info`` order).
    gt_matched : ndarray of bool
        Per ground-truth segment (crowd: always False).
    gt_iou : ndarray of float64
        IoU of each ground-truth segment's match, 0 when unmatched.
    gt_owned_fp : ndarray of int64
        Per ground-truth segment, the counted false positives it *owns*: the unmatched predictions of its
        category that overlap it more than any other non-crowd ground truth of that category. A false positive
        that overlaps none is owned by nobody.
    pred_matched, pred_fp : ndarray of bool
        Per predicted segment: matched; counted as a false positive (unmatched and not mostly void or crowd).
    pred_owner : ndarray of int64
        Per predicted segment, the ground-truth segment owning it when it is a counted false positive, else -1.
    gt_best_iou : ndarray of float64
        Per ground-truth segment, its largest IoU with a predicted segment of its category (the match's when
        matched; at most 0.5 when not; 0 for crowd or when none overlaps), the union as the matching takes it.
    gt_best_pred : ndarray of int64
        The predicted segment with that IoU, -1 when none overlaps.
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    gt_matched: np.ndarray
    gt_iou: np.ndarray
    gt_owned_fp: np.ndarray
    pred_matched: np.ndarray
    pred_fp: np.ndarray
    pred_owner: np.ndarray
    gt_best_iou: np.ndarray
    gt_best_pred: np.ndarray


def segment_boxes(index: np.ndarray, shape, n: int, *, segments=None) -> np.ndarray:
    """The bounding box of each segment of a compacted map, in pixels.

    Parameters
    ----------
    index : ndarray of int, shape (H * W,)
        0 on void, ``k + 1`` on segment ``k`` (:func:`compact_ids`).
    shape : (int, int)
        ``(H, W)``.
    n : int
        Number of segments.
    segments : array-like of int, optional
        Only these segments (0-based); the others' boxes are NaN. Only their pixels are visited.

    Returns
    -------
    ndarray of float64, shape (n, 4)
        ``x, y, w, h`` per segment (COCO's ``bbox``), NaN for a segment without pixels (or not asked for).
    """
    h, w = (int(x) for x in shape)
    flat = np.asarray(index, dtype=np.int64).reshape(-1)
    if segments is not None:
        wanted = np.zeros(n + 1, bool)
        wanted[np.asarray(segments, dtype=np.int64) + 1] = True
        wanted[0] = False
        at = np.flatnonzero(wanted[flat])
    else:
        at = np.flatnonzero(flat)
    seg = flat[at]  # 1..n
    # pixels per (row, segment) and (column, segment): a segment's first and last occupied row and column
    rows = np.bincount(at // w * (n + 1) + seg, minlength=h * (n + 1)).reshape(h, n + 1)[:, 1:].T > 0
    cols = np.bincount(at % w * (n + 1) + seg, minlength=w * (n + 1)).reshape(w, n + 1)[:, 1:].T > 0
    y0, y1 = rows.argmax(1), h - rows[:, ::-1].argmax(1)
    x0, x1 = cols.argmax(1), w - cols[:, ::-1].argmax(1)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], 1).astype(np.float64)
    boxes[~rows.any(1)] = np.nan
    return boxes


def joint_histogram(gt_index: np.ndarray, pred_index: np.ndarray, n_gt: int, n_pred: int) -> np.ndarray:
    """Pixels per (ground-truth index, predicted index) pair, shape ``(n_gt + 1, n_pred + 1)`` (row/column 0: void)."""
    key = gt_index * (n_pred + 1) + pred_index
    return np.bincount(key, minlength=(n_gt + 1) * (n_pred + 1)).reshape(n_gt + 1, n_pred + 1)


def match_image(joint: np.ndarray, gt: Segments, pred: Segments, *, n_categories: int) -> ImageMatch:
    """COCO panoptic matching of one image from its joint histogram (see the module docstring).

    Parameters
    ----------
    joint : ndarray of int, shape (len(gt) + 1, len(pred) + 1)
        :func:`joint_histogram` of the compacted maps (:func:`compact_ids`).
    gt, pred : Segments
    n_categories : int

    Returns
    -------
    ImageMatch
    """
    joint = np.asarray(joint, dtype=np.int64)
    n_gt, n_pred = len(gt), len(pred)
    gt_area = joint[1:, :].sum(1)
    pred_area = joint[:, 1:].sum(0)
    inter = joint[1:, 1:]
    void_pred = joint[0, 1:]  # predicted pixels on ground-truth void
    gt_cat, pred_cat = gt.category, pred.category
    crowd = np.asarray(gt.iscrowd, dtype=bool)

    same = (gt_cat[:, None] == pred_cat[None, :]) & ~crowd[:, None] & (inter > 0)
    union = pred_area[None, :] + gt_area[:, None] - inter - void_pred[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(same, inter / np.where(same, union, 1), 0.0)
    matched = same & (iou > MATCH_IOU)  # at most one per row and per column (segments do not overlap)
    gt_matched = matched.any(1)
    pred_matched = matched.any(0)
    gt_iou = np.where(matched, iou, 0.0).sum(1)
    gt_best_iou = iou.max(1) if n_pred else np.zeros(n_gt)
    gt_best_pred = np.where(gt_best_iou > 0, iou.argmax(1) if n_pred else 0, -1).astype(np.int64)

    tp = np.bincount(gt_cat[gt_matched], minlength=n_categories).astype(np.int64)
    iou_sum = np.bincount(gt_cat[gt_matched], weights=gt_iou[gt_matched], minlength=n_categories)
    fn = np.bincount(gt_cat[~gt_matched & ~crowd], minlength=n_categories).astype(np.int64)

    # the crowd region of each category: the last crowd segment of that category listed
    crowd_of = np.full(n_categories, -1, dtype=np.int64)
    crowd_rows = np.flatnonzero(crowd)
    crowd_of[gt_cat[crowd_rows]] = crowd_rows  # fancy assignment keeps the last of repeated indices
    cols = np.arange(n_pred)
    ignored = void_pred.astype(np.float64)
    has_crowd = crowd_of[pred_cat] >= 0 if n_pred else np.zeros(0, bool)
    ignored[has_crowd] += inter[crowd_of[pred_cat[has_crowd]], cols[has_crowd]]
    with np.errstate(invalid="ignore", divide="ignore"):
        mostly_ignored = ignored / np.where(pred_area > 0, pred_area, 1) > IGNORE_SHARE
    pred_fp = ~pred_matched & ~mostly_ignored
    fp = np.bincount(pred_cat[pred_fp], minlength=n_categories).astype(np.int64)

    # a counted false positive belongs to the non-crowd ground truth of its category it overlaps most
    owner = np.full(n_pred, -1, dtype=np.int64)
    if n_gt and pred_fp.any():
        overlap = np.where((gt_cat[:, None] == pred_cat[None, :]) & ~crowd[:, None], inter, 0)
        best = overlap.argmax(0)
        owned = pred_fp & (overlap[best, cols] > 0)
        owner[owned] = best[owned]
    gt_owned_fp = np.bincount(owner[owner >= 0], minlength=n_gt).astype(np.int64)
    return ImageMatch(tp=tp, fp=fp, fn=fn, iou=iou_sum, gt_area=gt_area, pred_area=pred_area, gt_matched=gt_matched,
                      gt_iou=gt_iou, gt_owned_fp=gt_owned_fp, pred_matched=pred_matched, pred_fp=pred_fp,
                      pred_owner=owner, gt_best_iou=gt_best_iou, gt_best_pred=gt_best_pred)
