"""The panoptic segmentation task (card ``task: panoptic_segmentation``): PQ, SQ and RQ overall and per group.

Registers :class:`PanopticTask` (the registry imports this module by name). Its parts:

==========================  =====================================================================
:mod:`.cards`               the data card (COCO panoptic JSON, PNG folder, side tables) and model card
:mod:`.data`                the panoptic JSON and PNGs, checked (one line per problem)
:mod:`._attributes`         person segments and image attributes (tables read by :mod:`audit.core.tables`)
:mod:`.matching`            one image reduced once: COCO panoptic matching (pure numpy)
:mod:`.statistics`          PQ/SQ/RQ per class, image group and person group (the engine)
:mod:`.merge`               Panoptic FPN's merge of instance and semantic outputs (pure numpy)
:mod:`.inference`           a model's panoptic predictions, chunked and cached
:mod:`.pipeline`            :func:`~.pipeline.evaluate_panoptic`: cards to an ``AuditRun``
:mod:`.report`              its tables, forest plots and methodology; the missed people and the worst images
==========================  =====================================================================

This package imports no other task.
"""

from __future__ import annotations

from ...core.registry import register_task
from . import report

__all__ = ["PanopticTask"]


class PanopticTask:
    """:class:`audit.core.registry.Task` for panoptic segmentation (COCO panoptic ground truth)."""

    name = "panoptic_segmentation"
    card_tasks = ("panoptic_segmentation",)
    metrics = {
        "pq": "PQ (panoptic quality, mean over categories)",
        "sq": "SQ (segmentation quality, mean over categories)",
        "rq": "RQ (recognition quality, mean over categories)",
        "pq_things": "PQ, things", "sq_things": "SQ, things", "rq_things": "RQ, things",
        "pq_stuff": "PQ, stuff", "sq_stuff": "SQ, stuff", "rq_stuff": "RQ, stuff",
        "pq_class": "PQ of the category", "sq_class": "SQ of the category", "rq_class": "RQ of the category",
        "person_recall": "person recall (matched at mask IoU > 0.5, COCO panoptic matching)",
        "person_sq": "person SQ (mean IoU of the matched people)",
        "person_rq_owned": "person RQ without unowned false positives",
        "person_pq_owned": "person PQ without unowned false positives",
    }

    def recognises(self, front_matter, *, model_task, has_model) -> bool:
        from .cards import is_panoptic_card

        return model_task == self.name or is_panoptic_card(front_matter)

    def load_data_card(self, data, *, pos_label=None, min_group_size=None, **settings):
        from ...core.card_fields import settled
        from .cards import PanopticDataCard, load_panoptic_data_card

        card = data if isinstance(data, PanopticDataCard) else load_panoptic_data_card(data)
        return settled(card, pos_label=pos_label, min_group_size=min_group_size, **settings)

    def load_model_card(self, path, front_matter, body):
        from .cards import load_panoptic_model_card

        return load_panoptic_model_card(path, front_matter, body)

    def evaluate(self, card, *, model, predictions, out_dir, context, **options):
        from .pipeline import evaluate_panoptic

        return evaluate_panoptic(data=card, model=model, predictions=predictions, out_dir=out_dir, context=context,
                                 **options)

    report_spec = staticmethod(report.report_spec)
    report_sections = staticmethod(report.report_sections)


register_task(PanopticTask())
