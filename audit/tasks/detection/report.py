"""The detection task's report: its tables and forest plots, recall by IoU and size, the missed people as crops."""

from __future__ import annotations

from ...core.people_report import PEOPLE_METHODOLOGY, PersonErrors, people_sections
from ...core.sections import ReportSpec, Section

__all__ = ["PERSON_ERRORS", "report_sections", "report_spec"]

TABLE_METRICS = ["recall@0.50", "recall@0.75", "ar", "miss_rate@0.50", "matched_iou@0.50", "mask_recall@0.50",
                 "mask_recall@0.75", "mask_ar", "bbox_AP", "bbox_AP50", "segm_AP"]
FOREST_METRICS = {"detection": ["recall@0.50", "ar"], "instance_segmentation": ["mask_recall@0.50", "recall@0.50"]}
TITLES = {"detection": "Detection", "instance_segmentation": "Instance segmentation"}

_BOXES = PersonErrors(
    matched="matched@0.50", iou="best_iou", what="best box IoU", predicted="best detection", box="best_",
    caption="Missed people per group: ground truth no detection matched at box IoU 0.50 (COCO matching), the "
            "lowest best IoU with any detection first; where a detection overlaps, the crop outlines the ground "
            "truth in orange and the best-overlapping detection in blue.")
# what decides a miss (people.parquet's columns) and how the crops read, per card task
PERSON_ERRORS = {
    "detection": _BOXES,
    "instance_segmentation": PersonErrors(
        matched="mask_matched@0.50", iou="mask_best_iou", what="best mask IoU", predicted="best detection",
        box="mask_best_", fallback=_BOXES,  # a table without mask columns: boxes decide
        caption="Missed people per group: ground truth no detection matched at mask IoU 0.50 (COCO matching on "
                "masks, as mask recall decides), the lowest best mask IoU first; the crop outlines the person's box "
                "in orange and the box of the detection whose mask overlaps best in blue."),
}


def report_spec(results: dict, *, card_task: str) -> ReportSpec:
    """How a detection or instance segmentation audit reads in the report."""
    config = results["config"]
    return ReportSpec(title=TITLES.get(card_task, "Detection"), table_metrics=TABLE_METRICS,
                      forest_metrics=FOREST_METRICS.get(card_task, FOREST_METRICS["detection"]), unit="people",
                      methodology=[PEOPLE_METHODOLOGY.format(interval=config.get("interval", "wilson"),
                                                             n_boot=config.get("n_boot"), seed=config.get("seed"))])


def report_sections(task_in, *, card_task: str, key: str, thumbnails: bool) -> list[Section]:
    """Recall by IoU threshold and object size per group, and the worst-localised missed people."""
    return people_sections(task_in, errors=PERSON_ERRORS.get(card_task, _BOXES), key=key, thumbnails=thumbnails,
                           forest_metrics=FOREST_METRICS.get(card_task, FOREST_METRICS["detection"]))
