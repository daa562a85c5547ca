"""The detection task (card ``task: detection`` or ``instance_segmentation``): people found per group.

Registers :class:`DetectionTask`; the task's code is this package (its card: :mod:`audit.tasks.detection.cards`,
its pipeline: :func:`audit.tasks.detection.pipeline.evaluate_detection`).
"""

from __future__ import annotations

from ...core.registry import register_task
from . import report

__all__ = ["DetectionTask"]


class DetectionTask:
    """:class:`audit.core.registry.Task` for detection and instance segmentation (COCO ground truth)."""

    name = "detection"
    card_tasks = ("detection", "instance_segmentation")
    metrics = {"recall@0.50": "recall at IoU 0.50", "ar": "average recall (IoU 0.50:0.95)",
               "mask_recall@0.50": "mask recall at IoU 0.50", "bbox_AP": "box AP (per group)",
               "segm_AP": "mask AP (per group)"}

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        split = front_matter.get("split")
        return isinstance(split, dict) and "coco" in split  # COCO ground truth

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        from ...core.card_fields import settled
        from .cards import DetectionDataCard, load_detection_data_card

        card = data if isinstance(data, DetectionDataCard) else load_detection_data_card(data)
        return settled(card, pos_label=pos_label, min_group_size=min_group_size, **settings)

    def load_model_card(self, path, front_matter, body):
        from .cards import load_detection_model_card

        return load_detection_model_card(path, front_matter, body)

    def evaluate(self, card, *, model, predictions, out_dir, context, n_perm=None, bootstrap=None, verify_images=None,
                 **options):
        from .pipeline import evaluate_detection

        return evaluate_detection(data=card, model=model, predictions=predictions, out_dir=out_dir, context=context,
                                  correction=card.options.get("correction", "fdr_bh"),
                                  interval=card.options.get("interval", "wilson"), **options)

    report_spec = staticmethod(report.report_spec)
    report_sections = staticmethod(report.report_sections)


register_task(DetectionTask())
