"""The semantic segmentation task's report: its tables and forest plots, person recall by IoU and size, and the
missed people (or, without person masks, the worst images)."""

from __future__ import annotations

from ...core.people_report import PEOPLE_METHODOLOGY, ImageErrors, PersonErrors, people_sections
from ...core.sections import ReportSpec, Section

__all__ = ["IMAGE_ERRORS", "PERSON_ERRORS", "report_sections", "report_spec"]

TABLE_METRICS = ["miou_pooled", "miou_per_image", "mdice_pooled", "mdice_per_image", "pixel_accuracy_pooled",
                 "pixel_accuracy_per_image", "person_iou", "person_iou_pooled", "person_recall@0.50", "person_ar"]
FOREST_METRICS = ["miou_pooled", "miou_per_image", "person_recall@0.50"]

# what decides a missed person (people.parquet's columns) and how the crops read
PERSON_ERRORS = PersonErrors(
    matched="matched@0.50", iou="best_iou", what="mask IoU", predicted="predicted person pixels on them",
    box="best_",
    caption="Missed people per group: people whose mask IoU with the predicted person region is below 0.50 (as "
            "person recall at 0.50 counts them), the lowest IoU first; the crop outlines the bounding box of the "
            "person's mask in orange and the box of the pixels predicted as person on that mask in blue.")
# without person masks: the worst images (images.parquet)
IMAGE_ERRORS = ImageErrors(
    column="miou", label="mIoU",
    caption="No person masks in this split, so the worst images instead: per group, the lowest per-image mIoU "
            "(mean IoU over the classes in the label or the prediction).")


def report_spec(results: dict, *, card_task: str) -> ReportSpec:
    """How a semantic segmentation audit reads in the report."""
    config = results["config"]
    return ReportSpec(title="Semantic segmentation", table_metrics=TABLE_METRICS, forest_metrics=FOREST_METRICS,
                      unit="samples",
                      methodology=[PEOPLE_METHODOLOGY.format(interval=config.get("interval", "wilson"),
                                                             n_boot=config.get("n_boot"), seed=config.get("seed"))])


def report_sections(task_in, *, card_task: str, key: str, thumbnails: bool) -> list[Section]:
    """Person recall by IoU threshold and mask size per group, and the missed people or the worst images."""
    return people_sections(task_in, errors=PERSON_ERRORS, key=key, thumbnails=thumbnails,
                           forest_metrics=FOREST_METRICS, images=IMAGE_ERRORS)
