"""The semantic segmentation task's report: its tables and forest plots, person recall by IoU and size, and the
missed people (or, without person masks, the worst images)."""

from __future__ import annotations

from ...core.people_report import PEOPLE_METHODOLOGY, people_sections
from ...core.sections import ReportSpec, Section

__all__ = ["report_sections", "report_spec"]

TABLE_METRICS = ["miou_pooled", "miou_per_image", "mdice_pooled", "mdice_per_image", "pixel_accuracy_pooled",
                 "pixel_accuracy_per_image", "person_iou", "person_iou_pooled", "person_recall@0.50", "person_ar"]
FOREST_METRICS = ["miou_pooled", "miou_per_image", "person_recall@0.50"]


def report_spec(results: dict, *, card_task: str) -> ReportSpec:
    """How a semantic segmentation audit reads in the report."""
    config = results["config"]
    return ReportSpec(title="Semantic segmentation", table_metrics=TABLE_METRICS, forest_metrics=FOREST_METRICS,
                      unit="samples",
                      methodology=[PEOPLE_METHODOLOGY.format(interval=config.get("interval", "wilson"),
                                                             n_boot=config.get("n_boot"), seed=config.get("seed"))])


def report_sections(task_in, *, card_task: str, key: str, thumbnails: bool) -> list[Section]:
    """Person recall by IoU threshold and mask size per group, and the missed people or the worst images."""
    return people_sections(task_in, task="semantic_segmentation", key=key, thumbnails=thumbnails,
                           forest_metrics=FOREST_METRICS)
