"""Display names of every metric: the one table the report, the notebook view and the gates read.

A metric code (``error_rate``, ``recall@0.50``, ``miou_pooled``, ``bbox_AP50_coco``) maps to a full name
for tables and a short one for sentences. Names keep their own capitals (IoU, mIoU, AP, AR, ROC AUC):
callers capitalise with :func:`sentence_case`, never ``str.capitalize``, which lower-cases the rest.
"""

from __future__ import annotations

import re

__all__ = ["METRIC_DISPLAY", "display_name", "short_name", "sentence_case", "is_proportion", "is_event", "lower_is_better"]

# code: (full name, short name for a sentence)
METRIC_DISPLAY: dict[str, tuple[str, str]] = {
    "accuracy": ("accuracy", "accuracy"),
    "error_rate": ("error rate (among processed samples)", "error rate"),
    "overall_error": ("overall error (abstentions count as errors)", "overall error"),
    "abstention_rate": ("abstention rate", "abstention rate"),
    "tpr": ("true positive rate (TPR)", "true positive rate"),
    "fpr": ("false positive rate (FPR)", "false positive rate"),
    "fnr": ("false negative rate (FNR)", "false negative rate"),
    "tnr": ("true negative rate (TNR)", "true negative rate"),
    "ppv": ("positive predictive value (PPV)", "PPV"),
    "npv": ("negative predictive value (NPV)", "NPV"),
    "fdr": ("false discovery rate (1 − PPV)", "1 − PPV"),
    "selection_rate": ("selection rate", "selection rate"),
    "roc_auc": ("ROC AUC", "ROC AUC"),
    "ece": ("expected calibration error (ECE)", "ECE"),
    "ar": ("AR (average recall, IoU 0.50:0.95)", "AR"),
    "mask_ar": ("mask AR (average recall, IoU 0.50:0.95)", "mask AR"),
    "person_ar": ("person AR (average recall)", "person AR"),
    "bbox_AP": ("box AP (per group)", "box AP"),
    "segm_AP": ("mask AP (per group)", "mask AP"),
    "miou_pooled": ("mIoU, dataset-pooled", "mIoU (pooled)"),
    "miou_per_image": ("mIoU, per-image mean", "mIoU (per image)"),
    "iou_pooled": ("IoU, dataset-pooled", "IoU (pooled)"),
    "iou_per_image": ("IoU, per-image mean", "IoU (per image)"),
    "mdice_pooled": ("mean Dice, dataset-pooled", "mean Dice (pooled)"),
    "mdice_per_image": ("mean Dice, per-image mean", "mean Dice (per image)"),
    "dice_pooled": ("Dice, dataset-pooled", "Dice (pooled)"),
    "dice_per_image": ("Dice, per-image mean", "Dice (per image)"),
    "pixel_accuracy_pooled": ("pixel accuracy, dataset-pooled", "pixel accuracy (pooled)"),
    "pixel_accuracy_per_image": ("pixel accuracy, per-image mean", "pixel accuracy (per image)"),
    "person_iou": ("person IoU (per-person mean)", "person IoU"),
    "person_iou_pooled": ("person IoU, pooled", "person IoU (pooled)"),
    # panoptic segmentation: means over the categories that occur (COCO's pq_average), and per person
    "pq": ("PQ (panoptic quality)", "PQ"),
    "sq": ("SQ (segmentation quality)", "SQ"),
    "rq": ("RQ (recognition quality)", "RQ"),
    "pq_things": ("PQ (things)", "PQ (things)"),
    "sq_things": ("SQ (things)", "SQ (things)"),
    "rq_things": ("RQ (things)", "RQ (things)"),
    "pq_stuff": ("PQ (stuff)", "PQ (stuff)"),
    "sq_stuff": ("SQ (stuff)", "SQ (stuff)"),
    "rq_stuff": ("RQ (stuff)", "RQ (stuff)"),
    "pq_class": ("PQ of the category", "PQ"),
    "sq_class": ("SQ of the category", "SQ"),
    "rq_class": ("RQ of the category", "RQ"),
    "person_recall": ("person recall (mask IoU > 0.5, panoptic matching)", "person recall"),
    "person_sq": ("person SQ (mean IoU of the matched people)", "person SQ"),
    "person_pq_owned": ("person PQ without unowned false positives", "person PQ without unowned false positives"),
    "person_rq_owned": ("person RQ without unowned false positives", "person RQ without unowned false positives"),
}

_PREFIX = {"": ("", "IoU"), "mask_": ("mask ", "mask IoU"), "person_": ("person ", "mask IoU")}
_SIZE = {"small": "small objects", "medium": "medium objects", "large": "large objects"}
_AT = re.compile(r"^(mask_|person_)?(recall|miss_rate|matched_iou)@([0-9.]+)(?:_([a-z0-9_]+))?$")
_AP = re.compile(r"^(bbox|segm)_(AP|AR)(\d*)(?:_(small|medium|large))?(_coco)?$")
_PROPORTION = {"accuracy", "error_rate", "overall_error", "abstention_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv",
               "fdr", "selection_rate", "pixel_accuracy_pooled", "pixel_accuracy_per_image", "person_recall"}
_LOWER = {"error_rate", "fpr", "fnr", "fdr", "overall_error", "abstention_rate", "ece"}
# Rates of an event: "as often" reads right for these; other ratios are "as high".
EVENTS = {"error_rate", "overall_error", "abstention_rate", "fpr", "fnr", "fdr", "selection_rate"}


def _pattern(metric: str) -> tuple[str, str] | None:
    m = _AT.match(metric)
    if m:
        prefix, what, threshold, tail = m.group(1) or "", m.group(2), m.group(3), m.group(4)
        who, iou = _PREFIX[prefix]
        base = {"recall": "recall", "miss_rate": "miss rate", "matched_iou": "IoU of found people"}[what]
        full = f"{who}{base} at {iou} {threshold}"
        if tail:
            full += ", " + _SIZE.get(tail, tail.replace("_", " "))
        return full, full
    m = _AP.match(metric)
    if m:
        kind, what, number, size, coco = m.groups()
        name = f"{'box' if kind == 'bbox' else 'mask'} {what}{number}"
        full = name + (f", {_SIZE[size]}" if size else "") + (" (COCO, whole set)" if coco else " (per group)")
        return full, name
    m = re.match(r"^ar_(small|medium|large)$", metric)
    if m:
        return f"AR, {_SIZE[m.group(1)]}", f"AR ({_SIZE[m.group(1)]})"
    return None


def display_name(metric: str) -> str:
    """The metric's full name for tables and legends, e.g. ``recall@0.50`` → ``recall at IoU 0.50``."""
    if metric in METRIC_DISPLAY:
        return METRIC_DISPLAY[metric][0]
    hit = _pattern(metric)
    return hit[0] if hit else metric.replace("_", " ")


def short_name(metric: str) -> str:
    """The metric's name inside a sentence, e.g. ``error_rate`` → ``error rate``, ``bbox_AP50`` → ``box AP50``."""
    if metric in METRIC_DISPLAY:
        return METRIC_DISPLAY[metric][1]
    hit = _pattern(metric)
    return hit[1] if hit else metric.replace("_", " ")


def sentence_case(text: str) -> str:
    """The first letter upper-cased, the rest untouched (``mIoU`` stays ``mIoU``; ``ROC AUC`` stays)."""
    if not text or (len(text) > 1 and text[1].isupper()):
        return text
    return text[0].upper() + text[1:]


def is_proportion(metric: str) -> bool:
    """A share of units (samples, people, pixels) in [0, 1], printed as a percentage in sentences."""
    m = _AT.match(metric)
    if m:
        return m.group(2) != "matched_iou"
    return metric in _PROPORTION


def is_event(metric: str) -> bool:
    """A rate of something going wrong or happening (errors, misses, false positives): "N× as often"."""
    return metric in EVENTS or metric.startswith(("miss_rate", "mask_miss_rate", "person_miss_rate"))


def lower_is_better(metric: str) -> bool:
    return metric in _LOWER or metric.startswith(("miss_rate", "mask_miss_rate", "person_miss_rate"))
