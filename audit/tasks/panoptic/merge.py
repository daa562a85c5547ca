"""Panoptic FPN's merge of an instance segmentation and a semantic segmentation into one panoptic map.

Kirillov et al., "Panoptic Segmentation" (CVPR 2019), section 7, as
panopticapi's ``combine_semantic_and_instance_predictions.py`` and
detectron2's ``combine_semantic_and_instance_outputs`` implement it:

1. instances with a score of at least ``score_threshold``, highest score
   first: an instance whose mask lies more than ``overlap_threshold`` (a
   share of its own area) on pixels already taken is dropped; otherwise it
   takes its pixels that are still free;
2. then each stuff class of the semantic map, in class order: its pixels
   still free, when there are at least ``stuff_area_threshold`` of them.

Everything else is void (0). Pure numpy; the thresholds come from the model
card's ``merge`` block.
"""

from __future__ import annotations

import numpy as np

__all__ = ["merge_panoptic"]


def merge_panoptic(*, masks, labels, scores, semantic, stuff_labels, score_threshold: float = 0.5,
                   overlap_threshold: float = 0.5, stuff_area_threshold: int = 4096):
    """Merge instances and a semantic map into a panoptic map.

    Parameters
    ----------
    masks : array-like, shape (K, H, W) or (K, 1, H, W)
        Instance masks: booleans, or probabilities kept above 0.5 (torchvision's Mask R-CNN output).
    labels : array-like of int, shape (K,)
        Each instance's class.
    scores : array-like of float, shape (K,)
    semantic : array-like, shape (H, W) class labels, or (C, H, W) class scores (arg-max taken)
    stuff_labels : iterable of int
        The semantic classes that are stuff; other semantic classes (things, background) give no segment.
    score_threshold, overlap_threshold : float
    stuff_area_threshold : int
        Pixels.

    Returns
    -------
    panoptic : ndarray of int32, shape (H, W)
        Segment ids 1..S, 0 void.
    segments : list of dict
        ``{"id", "category_id", "isthing", "score"}`` per segment, in id order (``score`` None for stuff).
    """
    semantic = np.asarray(semantic)
    if semantic.ndim == 3:
        semantic = semantic.argmax(0)
    if semantic.ndim != 2:
        raise ValueError(f"expected a semantic map of shape (H, W) or (C, H, W), found {semantic.shape}")
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.size == 0:
        masks = np.zeros((0, *semantic.shape), bool)
    if masks.ndim != 3 or masks.shape[1:] != semantic.shape:
        raise ValueError(f"expected instance masks of shape (K, {semantic.shape[0]}, {semantic.shape[1]}), found "
                         f"{masks.shape}")
    masks = masks > 0.5 if masks.dtype != bool else masks
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if not len(labels) == len(scores) == len(masks):
        raise ValueError(f"expected as many labels and scores as masks ({len(masks)}), found {len(labels)} and "
                         f"{len(scores)}")
    panoptic = np.zeros(semantic.shape, np.int32)
    taken = np.zeros(semantic.shape, bool)
    segments = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] < score_threshold:
            break
        mask = masks[i]
        area = int(mask.sum())
        if area == 0:
            continue
        overlap = int((mask & taken).sum())
        if overlap / area > overlap_threshold:
            continue
        if overlap:
            mask = mask & ~taken
        segments.append({"id": len(segments) + 1, "category_id": int(labels[i]), "isthing": True,
                         "score": float(scores[i])})
        panoptic[mask] = len(segments)
        taken |= mask
    for label in sorted(set(int(x) for x in stuff_labels)):
        mask = (semantic == label) & ~taken
        if int(mask.sum()) < stuff_area_threshold or not mask.any():
            continue
        segments.append({"id": len(segments) + 1, "category_id": label, "isthing": False, "score": None})
        panoptic[mask] = len(segments)
        taken |= mask
    return panoptic, segments
