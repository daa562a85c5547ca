"""COCO matching and AP/AR, vectorised, with the same numbers as pycocotools.

:func:`match` applies COCO's greedy matching (``COCOeval.evaluateImg``) to
every (image, category) unit at once: detections in score order (stable
``mergesort``, top ``max_det`` per unit), each ground truth matched at most
once per IoU threshold (crowd regions any number of times), a detection
takes the unmatched ground truth of highest IoU (the later one on a tie),
preferring regular ground truth to ignored ground truth, and a detection
matched to an ignored ground truth, or unmatched and outside the area range,
is ignored. It loops over detection *ranks* (at most 100), not over images,
thresholds and ground truths, so 5,000 images take a second or two where
pycocotools takes minutes.

:func:`accumulate` and :func:`summarize` are ``COCOeval.accumulate`` and
``COCOeval.summarize`` on the matches: precision at 101 recall points,
recall per IoU threshold, category, area range and detection cap, and the
12 standard numbers. Tests check them against pycocotools on randomised
detection sets (bit-identical).

Two additions pycocotools does not have:

* ``extra_ignore``: ground truth that is ignored (a detection on it is
  neither a true nor a false positive; missing it is no miss) without
  becoming a crowd region. This is Wilson et al.'s per-group AP done right:
  stock ``COCOeval._prepare()`` overwrites every ground truth's ``ignore``
  flag with its ``iscrowd``, so an ``ignore`` flag on the other groups' people
  does nothing there.
* The per-ground-truth view (:class:`Matches` ``gt_matched``, ``gt_iou``):
  which person was found at which threshold, and with what IoU, for recall
  per group.

IoUs are pycocotools' own definitions: boxes ``[x, y, w, h]`` with
``inter / (area_d + area_g - inter)``, or ``inter / area_d`` against a crowd
region, computed in float64 in the same order of operations as its C code;
masks go through ``pycocotools.mask.iou``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AREA_RANGES",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "REC_THRESHOLDS",
    "STAT_NAMES",
    "Boxes",
    "Matches",
    "accumulate",
    "box_iou",
    "match",
    "summarize",
]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = (("all", 0.0, 1e5 ** 2), ("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2),
               ("large", 96.0 ** 2, 1e5 ** 2))
MAX_DETS = (1, 10, 100)
STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
              "AR_medium", "AR_large")
_CHUNK_ELEMENTS = 1 << 21  # padded (units x detections x ground truths) IoU entries per chunk


@dataclass
class Boxes:
    """Ground truth or detections as parallel arrays (one entry per annotation).

    Attributes
    ----------
    image : ndarray of int
        Image id of each annotation.
    category : ndarray of int
        Category id.
    bbox : ndarray of shape (n, 4)
        ``[x, y, w, h]``.
    area : ndarray of float
        Ground truth: the annotation's ``area`` field; detections: what
        ``COCO.loadRes`` sets (``w * h`` for box results, the mask area for
        mask-only results).
    iscrowd : ndarray of bool, optional
        Ground truth only.
    score : ndarray of float, optional
        Detections only.
    ann_id : ndarray of int, optional
        Ground-truth annotation ids (pycocotools treats a match to id 0 as no
        match; :func:`match` reproduces that for AP).
    segmentation : list of RLE dicts, optional
        Compressed RLEs, for ``iou_type="segm"``.
    """

    image: np.ndarray
    category: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray | None = None
    score: np.ndarray | None = None
    ann_id: np.ndarray | None = None
    segmentation: list | None = field(default=None, repr=False)

    def __post_init__(self):
        self.image = np.asarray(self.image, dtype=np.int64).reshape(-1)
        self.category = np.asarray(self.category, dtype=np.int64).reshape(-1)
        self.bbox = np.asarray(self.bbox, dtype=np.float64).reshape(-1, 4)
        self.area = np.asarray(self.area, dtype=np.float64).reshape(-1)
        if self.iscrowd is not None:
            self.iscrowd = np.asarray(self.iscrowd, dtype=bool).reshape(-1)
        if self.score is not None:
            self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        if self.ann_id is not None:
            self.ann_id = np.asarray(self.ann_id, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return int(self.image.size)

    def subset(self, index) -> "Boxes":
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        segm = None if self.segmentation is None else [self.segmentation[i] for i in index]
        return Boxes(self.image[index], self.category[index], self.bbox[index], self.area[index],
                     pick(self.iscrowd), pick(self.score), pick(self.ann_id), segm)


@dataclass
class Matches:
    """The outcome of COCO matching, per ground truth and per kept detection.

    Axes: ``A`` area ranges (:data:`AREA_RANGES` order), ``T`` IoU thresholds.

    Attributes
    ----------
    gt_matched : ndarray of bool, (A, T, n_gt)
        Ground truth matched by some detection at that threshold.
    gt_iou : ndarray of float, (A, T, n_gt)
        IoU with the detection that matched it (0 when unmatched).
    gt_best_iou : ndarray of float, (n_gt,)
        Highest IoU with any kept detection of its unit, matched or not (0 when there is none):
        how close a missed person came to being found.
    gt_best_det : ndarray of int, (n_gt,)
        The input index of that detection (-1 when no detection overlaps): the box the report draws beside it.
    gt_ignore : ndarray of bool, (A, n_gt)
        Crowd, ``extra_ignore`` or outside the area range.
    det_index : ndarray of int, (n_kept,)
        Detections kept (the top ``max_det`` per unit), as indices into the input.
    det_rank : ndarray of int, (n_kept,)
        Rank within its unit (0 = highest score).
    det_matched, det_ignore : ndarray of bool, (A, T, n_kept)
    det_gt : ndarray of int, (A, T, n_kept)
        Index of the matched ground truth, or -1.
    gt_unit_category, det_category : ndarray of int
        Category of each ground truth / kept detection as evaluated (0 for
        every one when class-agnostic).
    det_image, det_score : ndarray
    categories : ndarray of int
        Evaluated category ids (``[0]`` when class-agnostic).
    """

    gt_matched: np.ndarray
    gt_iou: np.ndarray
    gt_ignore: np.ndarray
    det_index: np.ndarray
    det_rank: np.ndarray
    det_matched: np.ndarray
    det_ignore: np.ndarray
    det_gt: np.ndarray
    det_image: np.ndarray
    det_score: np.ndarray
    det_category: np.ndarray
    gt_category: np.ndarray
    gt_ann_id: np.ndarray
    categories: np.ndarray
    gt_best_iou: np.ndarray | None = None
    gt_best_det: np.ndarray | None = None


def box_iou(dt: np.ndarray, gt: np.ndarray, iscrowd: np.ndarray) -> np.ndarray:
    """pycocotools' box IoU, broadcast: ``dt (..., D, 4)``, ``gt (..., G, 4)``, ``iscrowd (..., G)`` -> ``(..., D, G)``.

    Same float64 operations in the same order as ``bbIou`` in maskApi.c.
    """
    d = dt[..., :, None, :]
    g = gt[..., None, :, :]
    da = d[..., 2] * d[..., 3]
    ga = g[..., 2] * g[..., 3]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    inter = w * h
    union = np.where(iscrowd[..., None, :], da, da + ga - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    return np.where((w > 0) & (h > 0), out, 0.0)


def _units(gt: Boxes, dt: Boxes, class_agnostic: bool):
    """Unit ids (image x category), evaluated categories and the in-unit order of GT and detections."""
    categories = np.unique(gt.category)  # COCOeval: params.catIds = sorted(cocoGt.getCatIds())
    if class_agnostic:
        keep_dt = np.isin(dt.category, categories) if len(dt) else np.zeros(0, bool)
        dt_cat_index = np.zeros(len(dt), dtype=np.int64)
        gt_cat_index = np.zeros(len(gt), dtype=np.int64)
        # useCats=0 lists a unit's annotations category by category, each in file order
        gt_order_key = np.searchsorted(categories, gt.category)
        dt_order_key = np.searchsorted(categories, dt.category)
    else:
        keep_dt = np.isin(dt.category, categories)
        dt_cat_index = np.searchsorted(categories, dt.category)
        gt_cat_index = np.searchsorted(categories, gt.category)
        gt_order_key = np.zeros(len(gt), dtype=np.int64)
        dt_order_key = np.zeros(len(dt), dtype=np.int64)
    return categories, keep_dt, gt_cat_index, dt_cat_index, gt_order_key, dt_order_key


def match(
    gt: Boxes,
    dt: Boxes,
    *,
    iou_type: str = "bbox",
    class_agnostic: bool = False,
    extra_ignore: np.ndarray | None = None,
    max_det: int = MAX_DETS[-1],
    thresholds: np.ndarray = IOU_THRESHOLDS,
    area_ranges=AREA_RANGES,
    image_heights: dict | None = None,
) -> Matches:
    """COCO greedy matching of ``dt`` to ``gt`` in every image and (unless class-agnostic) category.

    Parameters
    ----------
    gt, dt : Boxes
        Ground truth (``iscrowd`` and ``ann_id`` set) and detections (``score`` set).
        Detections of a category absent from the ground truth are dropped, as
        in pycocotools. Detections are ranked per unit by score with ties in
        input order.
    iou_type : {"bbox", "segm"}
    class_agnostic : bool
        pycocotools' ``useCats=0``: any detection may match any ground truth.
    extra_ignore : ndarray of bool, optional
        Ground truth to ignore without making it a crowd region.

    Returns
    -------
    Matches
    """
    n_gt = len(gt)
    thresholds = np.asarray(thresholds, dtype=float)
    n_t, n_a = thresholds.size, len(area_ranges)
    categories, keep_dt, gt_cat, dt_cat, gt_okey, dt_okey = _units(gt, dt, class_agnostic)
    n_cat = 1 if class_agnostic else max(categories.size, 1)
    crowd = gt.iscrowd if gt.iscrowd is not None else np.zeros(n_gt, bool)
    ignore_base = crowd.copy()
    if extra_ignore is not None:
        ignore_base |= np.asarray(extra_ignore, dtype=bool)
    lo = np.array([a[1] for a in area_ranges])[:, None]
    hi = np.array([a[2] for a in area_ranges])[:, None]
    gt_ignore = ignore_base[None, :] | (gt.area[None, :] < lo) | (gt.area[None, :] > hi)  # (A, n_gt)

    # unit = image x category; evaluate units that have ground truth or detections
    dt_idx = np.flatnonzero(keep_dt)
    images = np.unique(np.concatenate([gt.image, dt.image[dt_idx]]))
    gt_unit = np.searchsorted(images, gt.image) * n_cat + gt_cat
    dt_unit_all = np.searchsorted(images, dt.image[dt_idx]) * n_cat + dt_cat[dt_idx]
    # detections: per unit by score (stable: in-unit order = category then input order), top max_det
    order = np.lexsort((dt_idx, dt_okey[dt_idx], -dt.score[dt_idx], dt_unit_all))
    dt_sorted, dt_unit = dt_idx[order], dt_unit_all[order]
    starts = np.r_[0, np.flatnonzero(np.diff(dt_unit)) + 1] if dt_unit.size else np.zeros(0, int)
    rank = np.arange(dt_unit.size) - np.repeat(starts, np.diff(np.r_[starts, dt_unit.size]))
    kept = rank < max_det
    det_index, det_unit, det_rank = dt_sorted[kept], dt_unit[kept], rank[kept]
    # ground truth: per unit in annotation order (category first when class-agnostic)
    g_order = np.lexsort((np.arange(n_gt), gt_okey, gt_unit))
    g_unit = gt_unit[g_order]
    g_starts = np.r_[0, np.flatnonzero(np.diff(g_unit)) + 1] if n_gt else np.zeros(0, int)
    g_pos = np.arange(n_gt) - np.repeat(g_starts, np.diff(np.r_[g_starts, n_gt]))

    units = np.unique(np.concatenate([g_unit, det_unit]))
    gcount = np.bincount(np.searchsorted(units, g_unit), minlength=units.size)
    dcount = np.bincount(np.searchsorted(units, det_unit), minlength=units.size)
    n_kept = det_index.size
    gt_matched = np.zeros((n_a, n_t, n_gt), bool)
    gt_iou = np.zeros((n_a, n_t, n_gt))
    det_gt = np.full((n_a, n_t, n_kept), -1, dtype=np.int64)
    det_iou_ign = np.zeros((n_a, n_t, n_kept), bool)
    gt_best_iou = np.zeros(n_gt)
    gt_best_det = np.full(n_gt, -1, dtype=np.int64)

    # slot of each GT / kept detection inside its padded unit
    g_unit_pos = np.searchsorted(units, g_unit)
    d_unit_pos = np.searchsorted(units, det_unit)
    by_size = np.argsort(gcount, kind="stable")
    heights = image_heights or {}
    i = 0
    while i < units.size:
        # chunk of units with similar GT counts, bounded padded size
        g_max = max(int(gcount[by_size[i]]), 1)
        j = i + 1
        while j < units.size and (j - i + 1) * max(int(gcount[by_size[j]]), 1) * max_det <= _CHUNK_ELEMENTS:
            j += 1
        chunk = by_size[i:j]
        g_max = max(int(gcount[chunk].max()), 1)
        d_max = int(dcount[chunk].max()) if chunk.size else 0
        i = j
        if d_max == 0 or gcount[chunk].max() == 0:
            continue
        n_u = chunk.size
        slot = np.full(units.size, -1)
        slot[chunk] = np.arange(n_u)
        gsel = np.flatnonzero(slot[g_unit_pos] >= 0)
        dsel = np.flatnonzero(slot[d_unit_pos] >= 0)
        gu, gp = slot[g_unit_pos[gsel]], g_pos[gsel]
        du, dp = slot[d_unit_pos[dsel]], det_rank[dsel]
        g_orig = g_order[gsel]  # GT index per selected GT
        gmap = np.full((n_u, g_max), -1)
        gmap[gu, gp] = g_orig
        valid_g = gmap >= 0
        gfill = np.where(valid_g, gmap, 0)
        pad_crowd = crowd[gfill] & valid_g
        iou = np.full((n_u, d_max, g_max), -1.0)
        if iou_type == "bbox":
            gbox = gt.bbox[gfill]
            dbox = np.zeros((n_u, d_max, 4))
            dbox[du, dp] = dt.bbox[det_index[dsel]]
            full = box_iou(dbox, gbox, pad_crowd)
            dvalid = np.zeros((n_u, d_max), bool)
            dvalid[du, dp] = True
            iou = np.where(dvalid[:, :, None] & valid_g[:, None, :], full, -1.0)
        else:
            from pycocotools import mask as mask_utils

            for u in np.unique(du):
                gi = gmap[u][valid_g[u]]
                di = det_index[dsel[du == u]]  # already in rank order
                if gi.size == 0 or di.size == 0:
                    continue
                o = mask_utils.iou([dt.segmentation[k] for k in di], [gt.segmentation[k] for k in gi],
                                   [int(c) for c in crowd[gi]])
                iou[u, : di.size, : gi.size] = np.asarray(o).reshape(di.size, gi.size)
        pad_ign = np.where(valid_g[None], gt_ignore[:, gfill], True)  # (A, n_u, g_max)
        matched = np.zeros((n_a, n_t, n_u, g_max), bool)
        m_iou = np.zeros((n_a, n_t, n_u, g_max))
        # kept-detection index of (unit, rank)
        dslot = np.full((n_u, d_max), -1)
        dslot[du, dp] = dsel
        t_min = min(thresholds.min(), 1 - 1e-10)
        thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None, None]
        for r in range(d_max):
            row = iou[:, r, :]
            active = np.flatnonzero((row >= t_min).any(1))
            if active.size == 0:
                continue
            ri = row[active][None, None]  # (1, 1, n, G)
            free = ~(matched[:, :, active, :] & ~pad_crowd[active][None, None])
            elig = (ri >= thr) & free
            ign = pad_ign[:, active][:, None]  # (A, 1, n, G)
            best = np.full(elig.shape[:3], -1)
            for mask in (elig & ign, elig & ~ign):  # regular ground truth wins: written last
                score = np.where(mask, ri, -2.0)[..., ::-1]
                pos = g_max - 1 - score.argmax(-1)
                best = np.where(mask.any(-1), pos, best)
            a_i, t_i, n_i = np.nonzero(best >= 0)
            g_i = best[a_i, t_i, n_i]
            u_i = active[n_i]
            matched[a_i, t_i, u_i, g_i] = True
            m_iou[a_i, t_i, u_i, g_i] = row[u_i, g_i]
            k = dslot[u_i, r]
            det_gt[a_i, t_i, k] = gmap[u_i, g_i]
            det_iou_ign[a_i, t_i, k] = pad_ign[a_i, u_i, g_i]
        gv_u, gv_g = np.nonzero(valid_g)
        gt_best_iou[gmap[gv_u, gv_g]] = np.maximum(iou.max(axis=1), 0.0)[gv_u, gv_g]
        k_best = dslot[gv_u, iou.argmax(axis=1)[gv_u, gv_g]]
        overlaps = (iou.max(axis=1)[gv_u, gv_g] > 0) & (k_best >= 0)
        gt_best_det[gmap[gv_u, gv_g]] = np.where(overlaps, det_index[np.maximum(k_best, 0)], -1)
        gt_matched[:, :, gmap[gv_u, gv_g]] = matched[:, :, gv_u, gv_g]
        gt_iou[:, :, gmap[gv_u, gv_g]] = m_iou[:, :, gv_u, gv_g]

    gt_matched &= ~crowd[None, None]
    gt_iou *= gt_matched
    det_matched = det_gt >= 0
    det_area = dt.area[det_index]
    outside = (det_area[None, :] < lo) | (det_area[None, :] > hi)  # (A, n_kept)
    det_ignore = det_iou_ign | (~det_matched & outside[:, None, :])
    det_cat = (np.zeros(n_kept, np.int64) if class_agnostic else categories[dt_cat[det_index]]) if n_kept else \
        np.zeros(0, np.int64)
    return Matches(
        gt_matched=gt_matched, gt_iou=gt_iou, gt_ignore=gt_ignore, det_index=det_index, det_rank=det_rank,
        det_matched=det_matched, det_ignore=det_ignore, det_gt=det_gt, det_image=dt.image[det_index],
        det_score=dt.score[det_index], det_category=det_cat,
        gt_category=np.zeros(n_gt, np.int64) if class_agnostic else gt.category,
        gt_ann_id=gt.ann_id if gt.ann_id is not None else np.arange(1, n_gt + 1),
        categories=np.zeros(1, np.int64) if class_agnostic else categories, gt_best_iou=gt_best_iou,
        gt_best_det=gt_best_det,
    )


def accumulate(m: Matches, *, max_dets=MAX_DETS, n_thresholds: int | None = None):
    """``COCOeval.accumulate``: precision ``(T, R, K, A, M)`` and recall ``(T, K, A, M)``, -1 where undefined."""
    n_a, n_t = m.gt_ignore.shape[0], m.det_matched.shape[1]
    n_k, n_r, n_m = m.categories.size, REC_THRESHOLDS.size, len(max_dets)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    # pycocotools counts a match as a true positive through the matched GT's id, so id 0 is "unmatched"
    tp_match = m.det_matched.copy()
    if m.det_gt.size:
        tp_match &= m.gt_ann_id[np.maximum(m.det_gt, 0)] != 0
    # within a category: by score, ties by image id then in-image rank (pycocotools' concatenation order)
    order = np.lexsort((m.det_rank, m.det_image, -m.det_score, m.det_category))
    cat_sorted = m.det_category[order]
    for k, cat in enumerate(m.categories):
        sel_k = order[cat_sorted == cat]
        gt_k = m.gt_category == cat
        for a in range(n_a):
            npig = int(np.count_nonzero(~m.gt_ignore[a, gt_k]))
            if npig == 0:
                continue
            for mi, cap in enumerate(max_dets):
                sel = sel_k[m.det_rank[sel_k] < cap]
                dtm = tp_match[a][:, sel]
                dtig = m.det_ignore[a][:, sel]
                tps = np.logical_and(dtm, np.logical_not(dtig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtig))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                nd = tp_sum.shape[1]
                if nd == 0:
                    recall[:, k, a, mi] = 0
                    precision[:, :, k, a, mi] = 0
                    continue
                rc = tp_sum / npig
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                recall[:, k, a, mi] = rc[:, -1]
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(n_t):
                    inds = np.searchsorted(rc[t], REC_THRESHOLDS, side="left")
                    ok = inds < nd
                    q = np.zeros(n_r)
                    q[ok] = pr[t, inds[ok]]
                    precision[t, :, k, a, mi] = q
    return precision, recall


def summarize(precision: np.ndarray, recall: np.ndarray, *, max_dets=MAX_DETS, area_ranges=AREA_RANGES) -> dict:
    """``COCOeval.summarize`` for boxes and masks: the 12 standard numbers (-1 where undefined).

    ``max_dets`` and ``area_ranges`` are those :func:`accumulate` and :func:`match` were given; a number of
    an area range or detection cap left out is -1."""
    labels = [a[0] for a in area_ranges]

    def one(ap, iou_thr=None, area="all", cap=max_dets[-1]):
        aind = [i for i, lab in enumerate(labels) if lab == area]
        mind = [i for i, c in enumerate(max_dets) if c == cap]
        if ap:
            s = precision
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRESHOLDS)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = recall
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRESHOLDS)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    values = [
        one(1), one(1, 0.5), one(1, 0.75), one(1, area="small"), one(1, area="medium"), one(1, area="large"),
        one(0, cap=MAX_DETS[0]), one(0, cap=MAX_DETS[1]), one(0), one(0, area="small"), one(0, area="medium"),
        one(0, area="large"),
    ]
    return dict(zip(STAT_NAMES, values))
