"""The semantic segmentation task (a data card with a ``segmentation`` section, or a ``semantic_segmentation`` model).

Registers :class:`SegmentationTask`; the task's code is :mod:`audit.segmentation` (its card section:
:mod:`audit.segmentation.cards`, its pipeline: :func:`audit.segmentation.pipeline.evaluate_segmentation`).
"""

from __future__ import annotations

from ..core.registry import register_task

__all__ = ["SegmentationTask"]


class SegmentationTask:
    """:class:`audit.core.registry.Task` for semantic segmentation (label masks, optionally person masks)."""

    name = "semantic_segmentation"
    card_tasks = ("semantic_segmentation",)
    metrics = {"miou_pooled": "mIoU, dataset-pooled", "miou_per_image": "mIoU, per-image mean",
               "person_recall@0.50": "person recall at mask IoU 0.50", "person_iou": "person IoU (per-person mean)"}

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        return model_task == "semantic_segmentation" or (not has_model and front_matter.get("segmentation") is not None)

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        from ..cards import load_settled_data_card  # the classification card with its segmentation section

        return load_settled_data_card(data, pos_label=pos_label, min_group_size=min_group_size, **settings)

    def evaluate(self, card, *, model, predictions, out_dir, context, **options):
        from ..cards import ModelCard, load_model_card
        from ..segmentation.pipeline import evaluate_segmentation

        model_card = model if model is None or isinstance(model, ModelCard) else load_model_card(model)
        return evaluate_segmentation(data=card, model=model_card, predictions=predictions, out_dir=out_dir,
                                     context=context, correction=card.options.get("correction", "fdr_bh"), **options)


register_task(SegmentationTask())
