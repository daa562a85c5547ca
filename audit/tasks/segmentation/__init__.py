"""The semantic segmentation task (a data card with a ``segmentation`` section, or a ``semantic_segmentation`` model).

Registers :class:`SegmentationTask`; the task's code is this package (its card section:
:mod:`audit.tasks.segmentation.cards`, its pipeline: :func:`audit.tasks.segmentation.pipeline.evaluate_segmentation`).
"""

from __future__ import annotations

from ...core.registry import register_task
from . import report

from .cards import PeopleSpec, SegmentationSpec

__all__ = ["PeopleSpec", "SegmentationSpec", "SegmentationTask"]


class SegmentationTask:
    """:class:`audit.core.registry.Task` for semantic segmentation (label masks, optionally person masks)."""

    name = "semantic_segmentation"
    card_tasks = ("semantic_segmentation",)
    metrics = {"miou_pooled": "mIoU, dataset-pooled", "miou_per_image": "mIoU, per-image mean",
               "person_recall@0.50": "person recall at mask IoU 0.50", "person_iou": "person IoU (per-person mean)"}

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        return model_task == "semantic_segmentation" or (not has_model and front_matter.get("segmentation") is not None)

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        from ...core.card_loaders import DataCard, load_data_card
        from ...core.card_fields import settled
        from ...errors import AuditError
        from .cards import parse_segmentation

        card = data if isinstance(data, DataCard) else load_data_card(data, sections={"segmentation": parse_segmentation})
        if pos_label is not None:
            raise AuditError(f"--pos-label: expected no positive class for the segmentation audit of {card.path}, "
                             f"found '{pos_label}' (it applies to classification)")
        return settled(card, pos_label=None, min_group_size=min_group_size, **settings)

    def evaluate(self, card, *, model, predictions, out_dir, context, **options):
        from ...core.card_loaders import ModelCard, load_model_card
        from .pipeline import evaluate_segmentation

        model_card = model if model is None or isinstance(model, ModelCard) else load_model_card(model)
        return evaluate_segmentation(data=card, model=model_card, predictions=predictions, out_dir=out_dir,
                                     context=context, correction=card.options.get("correction", "fdr_bh"), **options)

    report_spec = staticmethod(report.report_spec)
    report_sections = staticmethod(report.report_sections)


register_task(SegmentationTask())
