"""The panoptic task's report: PQ, SQ, RQ by image group and person recall, SQ and owned PQ by person group; the
missed people as crops and the worst images by PQ.

The page skeleton (:mod:`audit.report`) draws the tables, forest plots and disparities from :func:`report_spec`;
:func:`report_sections` adds the worst errors from ``people.parquet`` and ``images.parquet`` through the core's
people sections (:mod:`audit.core.people_report`), with this task's wording.
"""

from __future__ import annotations

from ...core.people_report import PEOPLE_METHODOLOGY, ImageErrors, PersonErrors, worst_images_section, \
    worst_people_section
from ...core.sections import ReportSpec, Section

__all__ = ["IMAGE_ERRORS", "PERSON_ERRORS", "report_sections", "report_spec"]

TABLE_METRICS = ["pq", "sq", "rq", "pq_things", "sq_things", "rq_things", "pq_stuff", "sq_stuff", "rq_stuff",
                 "person_recall", "person_sq", "person_pq_owned", "person_rq_owned"]
FOREST_METRICS = ["pq", "person_recall", "person_sq"]

PERSON_ERRORS = PersonErrors(
    matched="matched", iou="best_iou", what="best IoU", predicted="best-overlapping predicted segment of their "
    "category", box="best_",
    caption="Missed people per group: person segments that no predicted segment of their category matches (IoU "
            "above 0.5, COCO panoptic matching, as person recall counts them), the lowest best IoU with a predicted "
            "segment of their category first; the crop outlines the box of the person's segment in orange and the "
            "box of the best-overlapping predicted segment of their category in blue.",
    unavailable="Not available: the worst errors need the per-person table people.parquet in the output "
                "directory, as audit run writes it.")
IMAGE_ERRORS = ImageErrors(
    column="pq", label="PQ",
    caption="Worst images per image group: the lowest per-image PQ (the mean over the categories in the image's "
            "ground truth or prediction).")

MATCHING = ("Matching (COCO panoptic, as panopticapi's pq_compute): a ground-truth and a predicted segment of the "
            "same category match when their IoU is above 0.5, so each has at most one match; the union leaves out "
            "the predicted pixels on void (unlabelled) ground truth; crowd regions are never matched nor missed, and "
            "an unmatched prediction lying more than half on void and its category's crowd region is no false "
            "positive. torchmetrics' PanopticQuality differs on predicted void: it also leaves the ground truth's "
            "pixels predicted as void out of the union (so a segment predicted on one pixel of six can match); this "
            "audit follows panopticapi. Areas are pixel counts of the PNGs.")
MEANS = ("PQ = sum of matched IoUs / (TP + FP/2 + FN/2), SQ = sum of matched IoUs / TP, RQ = TP / (TP + FP/2 + "
         "FN/2), per category; PQ, SQ and RQ are their means over the categories that occur (TP + FP + FN > 0) in "
         "the images counted (all, things or stuff), as COCO's pq_average: a category that occurs without a match "
         "adds SQ 0, as in panopticapi and torchmetrics. Image groups (an attribute of the image) get these; person "
         "groups get person recall (people matched / people), person SQ (the mean IoU of the matched people) and "
         "the owned PQ and RQ.")
OWNED = ("PQ without unowned false positives (person PQ, owned): the sum of the matched people's IoUs / (TP + FN/2 + "
         "FP/2) over a group's people, counting only the false positives of a person category that the group's "
         "people own: a false positive belongs to the non-crowd person of its category it overlaps most. One that "
         "overlaps nobody cannot be charged to any group and is left out, so over everyone this is the person "
         "categories' PQ without the false positives on the background. The owned RQ likewise.")
IMAGE_INTERVALS = ("Intervals of PQ, SQ and RQ by image group: a cluster bootstrap over images ({n_boot} resamples, "
                   "seed {seed}), each resample the ratio of the resampled sums; their tests are Wald tests with the "
                   "bootstrap standard error. The image-level PQ, SQ and RQ are not tested by person group: a "
                   "false positive belongs to no person, and an image holds people of several groups.")


def _person_interval(results: dict) -> str:
    """The proportion interval of person recall ('wilson', 'clopper-pearson'), from its rows."""
    for row in results.get("metrics") or []:
        if row.get("metric") == "person_recall" and row.get("interval"):
            return str(row["interval"]).split("_effective")[0]
    return "wilson"


def report_spec(results: dict, *, card_task: str) -> ReportSpec:
    """How a panoptic audit reads in the report: ``n_samples`` counts images."""
    config = results["config"]
    people = PEOPLE_METHODOLOGY.format(interval=_person_interval(results), n_boot=config.get("n_boot"),
                                       seed=config.get("seed"))
    return ReportSpec(title="Panoptic segmentation", table_metrics=TABLE_METRICS, forest_metrics=FOREST_METRICS,
                      unit="images", methodology=[
                          MATCHING, MEANS, OWNED,
                          IMAGE_INTERVALS.format(n_boot=config.get("n_boot"), seed=config.get("seed")), people])


def report_sections(task_in, *, card_task: str, key: str, thumbnails: bool) -> list[Section]:
    """The worst errors: the missed people as crops, then the worst images by PQ per image group."""
    results = task_in.document["results"]
    worst, note = worst_people_section(task_in, results, errors=PERSON_ERRORS, thumbnails=thumbnails)
    sections = [Section(id="worst-errors", title="Worst errors", place="examples", note=note, groups=worst)]
    if task_in.images is not None and "pq" in task_in.images.columns:
        images, note = worst_images_section(task_in, results, errors=IMAGE_ERRORS, thumbnails=thumbnails)
        if images:
            sections.append(Section(id="worst-images", title="Worst images", place="examples", note=note,
                                    groups=images))
    return sections
