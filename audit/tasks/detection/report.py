"""The detection task's report: its tables and forest plots, recall by IoU and size, the missed people as crops."""

from __future__ import annotations

from ...core.people_report import PEOPLE_METHODOLOGY, people_sections
from ...core.sections import ReportSpec, Section

__all__ = ["report_sections", "report_spec"]

TABLE_METRICS = ["recall@0.50", "recall@0.75", "ar", "miss_rate@0.50", "matched_iou@0.50", "mask_recall@0.50",
                 "mask_recall@0.75", "mask_ar", "bbox_AP", "bbox_AP50", "segm_AP"]
FOREST_METRICS = {"detection": ["recall@0.50", "ar"], "instance_segmentation": ["mask_recall@0.50", "recall@0.50"]}
TITLES = {"detection": "Detection", "instance_segmentation": "Instance segmentation"}


def report_spec(results: dict, *, card_task: str) -> ReportSpec:
    """How a detection or instance segmentation audit reads in the report."""
    config = results["config"]
    return ReportSpec(title=TITLES.get(card_task, "Detection"), table_metrics=TABLE_METRICS,
                      forest_metrics=FOREST_METRICS.get(card_task, FOREST_METRICS["detection"]), unit="people",
                      methodology=[PEOPLE_METHODOLOGY.format(interval=config.get("interval", "wilson"),
                                                             n_boot=config.get("n_boot"), seed=config.get("seed"))])


def report_sections(task_in, *, card_task: str, key: str, thumbnails: bool) -> list[Section]:
    """Recall by IoU threshold and object size per group, and the worst-localised missed people."""
    return people_sections(task_in, task=card_task if card_task in TITLES else "detection", key=key,
                           thumbnails=thumbnails, forest_metrics=FOREST_METRICS.get(card_task, FOREST_METRICS["detection"]))
